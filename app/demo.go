package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"gatehouse/app/dashboards"
	"gatehouse/app/filedash"
	"gatehouse/db"
)

// DemoPassword is the one password every demo user is created with. It is
// printed at startup; it is not a secret.
const DemoPassword = "gatehouse-demo-2026"

// demoActor is who the audit log says made the demo's changes.
var demoActor = db.Actor{Email: "demo"}

// demoGroups are the groups `serve --demo` creates, with the dashboard each
// is granted ("" for none: sales-leads only unlocks a panel).
var demoGroups = []struct {
	Name, Description, Dashboard string
}{
	{"sales", "The sales team: opens the Sales dashboard.", dashboards.SalesSlug},
	{dashboards.SalesLeadsGroup, "Sales team leads: also see individual reps' numbers on the Sales dashboard.", ""},
	{"support", "The support team: opens the Support dashboard.", dashboards.SupportSlug},
	{"finance", "The finance team: opens the Finance dashboard.", dashboards.FinanceSlug},
}

// demoUsers are the demo's people, each showing a different view. What
// each sees is worked out from the data when the banner is printed.
var demoUsers = []struct {
	Email, Name string
	Admin       bool
	Groups      []string
}{
	{"alice@demo.example", "Alice Chen", false, []string{"sales"}},
	{"lee@demo.example", "Lee Park", false, []string{"sales", dashboards.SalesLeadsGroup}},
	{"sam@demo.example", "Sam Rivera", false, []string{"support"}},
	{"fran@demo.example", "Fran Okafor", false, []string{"finance"}},
	{"olivia@demo.example", "Olivia Grant", false, nil},
	{"admin@demo.example", "Demo Admin", true, nil},
}

// SeedDemo makes sure the demo's groups, users, memberships and grants
// exist, and prints how to log in to out. It is idempotent: it only creates
// what is missing (through the store, so each creation is audited as actor
// "demo"), and leaves existing rows alone, so a second run changes nothing
// and a demo user who changed their password keeps it. Demo users are
// created active, with DemoPassword and no forced password change.
func (a *App) SeedDemo(ctx context.Context, out io.Writer) error {
	if err := db.CheckPasswordPolicy(DemoPassword); err != nil {
		return fmt.Errorf("the demo password is refused: %w", err)
	}
	groups := map[string]int64{}
	for _, g := range demoGroups {
		id, err := a.ensureDemoGroup(ctx, g.Name, g.Description)
		if err != nil {
			return err
		}
		groups[g.Name] = id
	}

	grants, err := a.store.ListGrants(ctx)
	if err != nil {
		return err
	}
	granted := map[string]bool{}
	for _, gr := range grants {
		granted[gr.Dashboard+"\x00"+gr.GroupName] = true
	}
	for _, g := range demoGroups {
		if g.Dashboard == "" || granted[g.Dashboard+"\x00"+g.Name] {
			continue
		}
		if err := a.store.AddGrant(ctx, demoActor, g.Dashboard, groups[g.Name]); err != nil && !errors.Is(err, db.ErrDuplicate) {
			return fmt.Errorf("granting %s to %s: %w", g.Dashboard, g.Name, err)
		}
	}

	// The demo's dashboard written as a file, for every team: each sees
	// its own rows.
	if a.registry.Get(filedash.DemoSlug) != nil {
		for _, g := range []string{"sales", "support", "finance"} {
			if granted[filedash.DemoSlug+"\x00"+g] {
				continue
			}
			if err := a.store.AddGrant(ctx, demoActor, filedash.DemoSlug, groups[g]); err != nil && !errors.Is(err, db.ErrDuplicate) {
				return fmt.Errorf("granting %s to %s: %w", filedash.DemoSlug, g, err)
			}
		}
	}

	existed := map[string]bool{}
	for _, du := range demoUsers {
		u, created, err := a.ensureDemoUser(ctx, du.Email, du.Name, du.Admin)
		if err != nil {
			return err
		}
		existed[du.Email] = !created
		if len(du.Groups) == 0 {
			continue
		}
		mine, err := a.store.GroupsOfUser(ctx, u.ID)
		if err != nil {
			return err
		}
		in := map[int64]bool{}
		for _, g := range mine {
			in[g.ID] = true
		}
		for _, name := range du.Groups {
			if in[groups[name]] {
				continue
			}
			if err := a.store.AddMember(ctx, demoActor, groups[name], u.ID, 0); err != nil && !errors.Is(err, db.ErrDuplicate) {
				return fmt.Errorf("adding %s to %s: %w", du.Email, name, err)
			}
		}
	}
	// What each demo user sees now: people may have changed the demo's
	// groups and grants since it was first seeded.
	sees := map[string]string{}
	for _, du := range demoUsers {
		var err error
		if sees[du.Email], err = a.demoSees(ctx, du.Email); err != nil {
			return err
		}
	}
	return printDemo(out, a.cfg.PublicURL(), existed, sees)
}

// demoSees says in a few words what the user with email may open now, by
// the same check every request runs.
func (a *App) demoSees(ctx context.Context, email string) (string, error) {
	u, err := a.store.UserByEmail(ctx, email)
	if err != nil {
		return "", err
	}
	switch {
	case !u.IsActive:
		return "nothing: the account is deactivated", nil
	case u.IsAdmin:
		return "everything, and the admin pages", nil
	}
	v := dashboards.ViewerOf(u)
	var open []string
	for _, d := range a.registry.All() {
		dec, err := dashboards.Check(ctx, a.store, v, d, nil)
		if err != nil {
			return "", err
		}
		if !dec.Allowed {
			continue
		}
		var with, without []string
		for _, p := range d.Panels {
			if p.RequireGroup == "" {
				continue
			}
			pd, err := dashboards.Check(ctx, a.store, v, d, p)
			if err != nil {
				return "", err
			}
			if pd.Allowed {
				with = append(with, fmt.Sprintf("%s (%s)", p.Title, p.RequireGroup))
			} else {
				without = append(without, p.Title)
			}
		}
		s := d.Title
		switch {
		case len(with) > 0:
			s += ", including " + strings.Join(with, ", ")
		case len(without) > 0:
			s += " (without " + strings.Join(without, ", ") + ")"
		}
		open = append(open, s)
	}
	if len(open) > 0 {
		return strings.Join(open, "; "), nil
	}
	groups, err := a.store.GroupsOfUser(ctx, u.ID)
	if err != nil {
		return "", err
	}
	if len(groups) == 0 {
		return "nothing: in no group, so every dashboard is denied", nil
	}
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.Name
	}
	return "nothing: in " + strings.Join(names, ", ") + ", which open no dashboard", nil
}

// ensureDemoGroup returns the id of the group name, creating it when missing.
func (a *App) ensureDemoGroup(ctx context.Context, name, description string) (int64, error) {
	g, err := a.store.GroupByName(ctx, name)
	if errors.Is(err, db.ErrNotFound) {
		g, err = a.store.CreateGroup(ctx, demoActor, name, description)
		if errors.Is(err, db.ErrDuplicate) { // created meanwhile by another process
			g, err = a.store.GroupByName(ctx, name)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("demo group %s: %w", name, err)
	}
	return g.ID, nil
}

// ensureDemoUser returns the user with email, creating it with
// DemoPassword when missing. An existing user is returned unchanged.
func (a *App) ensureDemoUser(ctx context.Context, email, name string, admin bool) (u db.User, created bool, err error) {
	u, err = a.store.UserByEmail(ctx, email)
	if err == nil || !errors.Is(err, db.ErrNotFound) {
		return u, false, err
	}
	hash, err := a.hasher.Hash(ctx, DemoPassword)
	if err != nil {
		return u, false, err
	}
	u, err = a.store.CreateUser(ctx, demoActor, db.NewUser{Email: email, Name: name, PasswordHash: hash, IsAdmin: admin})
	if errors.Is(err, db.ErrDuplicate) {
		u, err = a.store.UserByEmail(ctx, email)
		return u, false, err
	}
	if err != nil {
		return u, false, fmt.Errorf("demo user %s: %w", email, err)
	}
	return u, true, nil
}

// printDemo tells the person who started the demo how to use it.
func printDemo(out io.Writer, baseURL string, existed map[string]bool, sees map[string]string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\nGatehouse demo: open %s/login and log in as one of these demo users.\n", baseURL)
	fmt.Fprintf(&b, "Password for all of them: %s\n\n", DemoPassword)
	tw := tabwriter.NewWriter(&b, 0, 0, 3, ' ', 0)
	kept := false
	for _, du := range demoUsers {
		kept = kept || existed[du.Email]
		fmt.Fprintf(tw, "  %s\tsees %s\n", du.Email, sees[du.Email])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if kept {
		b.WriteString("\nDemo users that already existed were left as they are: a password someone changed stays changed.\n")
	}
	b.WriteString("\n")
	_, err := io.WriteString(out, b.String())
	return err
}
