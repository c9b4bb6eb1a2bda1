package db

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/uptrace/bun"
)

// Audit actions for access as code.
const (
	// ActionAccessApply is the one summary event of an apply: the file's
	// name and sha256 and how many changes it made. Each change is also
	// written with its usual action (member.add, grant.remove, …) and the
	// same sha256 under "apply" in its detail.
	ActionAccessApply = "access.apply"
)

// AccessState is the whole of who may see what, as an access file states
// it: groups with their description, managers and members, and grants.
// Users are not part of it (a file never creates or deletes users).
type AccessState struct {
	// Groups are ordered by name regardless of case.
	Groups []StateGroup
	// Grants are ordered by dashboard, then group name regardless of case.
	Grants []StateGrant
	// Apps are ordered by slug.
	Apps []StateApp
}

// StateApp is one app of an AccessState (see App).
type StateApp struct {
	Slug, URL, Title, Description, UserHeader string
	// ExternalURL is where a team's own proxy serves it ("" none).
	ExternalURL string
}

// summary is how a plan shows an app: its URL, title, description and
// user header.
func (a StateApp) summary() string {
	s := a.URL + " " + strconv.Quote(a.Title)
	if a.Description != "" {
		s += " " + strconv.Quote(a.Description)
	}
	if a.UserHeader != "" {
		s += " (user header " + a.UserHeader + ")"
	}
	if a.ExternalURL != "" {
		s += " (behind a proxy at " + a.ExternalURL + ")"
	}
	return s
}

// StateGroup is one group of an AccessState.
type StateGroup struct {
	Name        string
	Description string
	// Managers are emails, ordered.
	Managers []string
	// IdPGroups are the identity provider's groups that feed this group
	// (groups map), ordered.
	IdPGroups []string
	// Members are ordered by email: the memberships people manage (an
	// admin, a manager, the CLI, an approved request, a file).
	Members []StateMember
	// IdPMembers are the emails of the members group sync from the identity
	// provider added (source "idp"), ordered. A file does not list them and
	// an apply leaves them to the sync; listing one in a file makes that
	// membership one people manage.
	IdPMembers []string
}

// StateMember is one membership of an AccessState; ExpiresAt is Unix ms (0: never).
type StateMember struct {
	Email     string
	ExpiresAt int64
}

// StateGrant lets the members of Group open Dashboard.
type StateGrant struct {
	Dashboard string
	Group     string
}

// Kinds of AccessChange.
const (
	ChangeGroup       = "group"
	ChangeDescription = "description"
	ChangeMember      = "member"
	ChangeExpiry      = "expiry"
	ChangeManager     = "manager"
	ChangeGrant       = "grant"
	ChangeMapping     = "mapping"
	ChangeApp         = "app"
)

// AccessChange is one line of a plan: Op is '+' (add), '-' (remove) or '~'
// (change Before to After).
type AccessChange struct {
	Op    byte
	Kind  string
	Group string
	// Subject is the member's or manager's email, or the grant's dashboard.
	Subject       string
	Before, After string
	// ExpiresAt is a new member's expiry, or an expiry's new value (Unix ms).
	ExpiresAt int64
	// Counts says what a removed group takes with it.
	Counts string
}

// String is the change as plan prints it: `+ member "sales" /
// ann@example.com (until 2027-06-30)`, `~ expiry "sales" / bob@example.com:
// 2027-01-31 → never`, `- grant finance → "ops"`.
func (c AccessChange) String() string {
	b := []byte{c.Op, ' '}
	b = append(b, c.Kind...)
	b = append(b, ' ')
	switch c.Kind {
	case ChangeGroup:
		b = strconv.AppendQuote(b, c.Group)
		switch {
		case c.Op == '~':
			b = append(b, ": renamed from "...)
			b = strconv.AppendQuote(b, c.Before)
		case c.Op == '+' && c.After != "":
			b = append(b, " (description "...)
			b = strconv.AppendQuote(b, c.After)
			b = append(b, ')')
		}
		if c.Counts != "" {
			b = append(b, " ("+c.Counts+")"...)
		}
	case ChangeDescription:
		b = strconv.AppendQuote(b, c.Group)
		b = append(b, ": "...)
		b = strconv.AppendQuote(b, c.Before)
		b = append(b, " → "...)
		b = strconv.AppendQuote(b, c.After)
	case ChangeGrant:
		b = append(b, c.Subject+" → "...)
		b = strconv.AppendQuote(b, c.Group)
	case ChangeMapping:
		b = strconv.AppendQuote(b, c.Group)
		b = append(b, " ← IdP group "...)
		b = strconv.AppendQuote(b, c.Subject)
	case ChangeApp:
		b = append(b, c.Subject...)
		switch c.Op {
		case '+':
			b = append(b, " → "+c.After...)
		case '~':
			b = append(b, ": "+c.Before+" → "+c.After...)
		}
	default: // member, expiry, manager
		b = strconv.AppendQuote(b, c.Group)
		b = append(b, " / "+c.Subject...)
		switch {
		case c.Kind == ChangeExpiry:
			b = append(b, ": "+c.Before+" → "+c.After...)
		case c.Kind == ChangeMember && c.Op == '~':
			b = append(b, ": added by the IdP → kept by the file"...)
		case c.Kind == ChangeMember && c.Op == '+' && c.ExpiresAt != 0:
			b = append(b, " (until "+FormatExpiry(c.ExpiresAt)+")"...)
		}
		if c.Kind == ChangeMember && c.Op == '~' && c.ExpiresAt != 0 {
			b = append(b, " (until "+FormatExpiry(c.ExpiresAt)+")"...)
		}
	}
	return string(b)
}

// FormatExpiry writes an expiry as an access file does: a date
// (2027-06-30) when it falls at midnight UTC, as every expiry set by
// Gatehouse does, otherwise RFC 3339; "never" for 0.
func FormatExpiry(ms int64) string {
	if ms == 0 {
		return "never"
	}
	t := FromMS(ms)
	if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0 {
		return t.Format("2006-01-02")
	}
	return t.Format("2006-01-02T15:04:05.000Z07:00")
}

// AccessPlan is what applying a file changes, in a stable order.
type AccessPlan struct {
	Changes []AccessChange
}

// Counts returns how many changes add, change and remove something.
func (p AccessPlan) Counts() (add, change, remove int) {
	for _, c := range p.Changes {
		switch c.Op {
		case '+':
			add++
		case '~':
			change++
		default:
			remove++
		}
	}
	return add, change, remove
}

// ResolveAccess turns a parsed access file into the state it asks for,
// given the database's current state and its users (email → id), or fails
// with the file's errors. PlanAccess and ApplyAccess call it with what they
// read, inside the same snapshot or transaction.
type ResolveAccess func(have AccessState, users map[string]int64) (AccessState, error)

// PlanAccess reads the current state in one consistent snapshot (without
// taking the write lock), resolves the file against it and returns what
// ApplyAccess would change.
func (s *Store) PlanAccess(ctx context.Context, resolve ResolveAccess) (AccessPlan, error) {
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return AccessPlan{}, storageErr(err)
	}
	defer conn.Close()
	begin := "BEGIN DEFERRED"
	if s.Dialect == Postgres {
		begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	}
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		return AccessPlan{}, storageErr(err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	have, users, err := readAccessState(ctx, conn)
	if err != nil {
		return AccessPlan{}, storageErr(err)
	}
	want, err := resolve(have, users)
	if err != nil {
		return AccessPlan{}, err
	}
	return DiffAccess(have, want), nil
}

// ReadAccessState returns the whole current access state, read in one
// consistent snapshot.
func (s *Store) ReadAccessState(ctx context.Context) (AccessState, error) {
	var st AccessState
	_, err := s.PlanAccess(ctx, func(have AccessState, _ map[string]int64) (AccessState, error) {
		st = have
		return have, nil
	})
	return st, err
}

// ApplyAccess makes the access state equal to what resolve returns, in one
// write transaction: on SQLite BEGIN IMMEDIATE, on PostgreSQL with the
// access tables locked against other writers (readers go on), so an edit
// made in the panel at the same time lands wholly before or wholly after
// the apply, never in between. The state is read and resolved inside that
// transaction, so the plan applied is the plan against what is there.
//
// Every change is audited with its usual action and the file's sha256
// under "apply"; one access.apply event sums them up. Applying the same
// file again changes nothing and writes nothing.
func (s *Store) ApplyAccess(ctx context.Context, a Actor, file, sha256 string, resolve ResolveAccess) (AccessPlan, error) {
	var plan AccessPlan
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if s.Dialect == Postgres {
			if _, err := tx.ExecContext(ctx, "LOCK TABLE groups, memberships, grants, group_managers, idp_group_mappings, apps IN SHARE ROW EXCLUSIVE MODE"); err != nil {
				return err
			}
		}
		have, users, err := readAccessState(ctx, tx)
		if err != nil {
			return err
		}
		want, err := resolve(have, users)
		if err != nil {
			return err
		}
		plan = DiffAccess(have, want)
		if len(plan.Changes) == 0 {
			return nil
		}
		return s.applyPlan(ctx, tx, a, plan, want, users, file, sha256)
	})
	return plan, err
}

// readAccessState reads groups, memberships, managers and grants (and the
// users' emails) through db: a transaction or a connection inside one.
func readAccessState(ctx context.Context, db bun.IDB) (AccessState, map[string]int64, error) {
	var st AccessState
	var groups []Group
	if err := db.NewSelect().Model(&groups).OrderExpr("name_key").Scan(ctx); err != nil {
		return st, nil, err
	}
	byID := make(map[int64]*StateGroup, len(groups))
	st.Groups = make([]StateGroup, len(groups))
	for i, g := range groups {
		st.Groups[i] = StateGroup{Name: g.Name, Description: g.Description}
		byID[g.ID] = &st.Groups[i]
	}
	type userRow struct {
		ID    int64  `bun:"id"`
		Email string `bun:"email"`
	}
	var urows []userRow
	if err := db.NewSelect().TableExpr("users").ColumnExpr("id, email").Scan(ctx, &urows); err != nil {
		return st, nil, err
	}
	users := make(map[string]int64, len(urows))
	emails := make(map[int64]string, len(urows))
	for _, u := range urows {
		users[u.Email] = u.ID
		emails[u.ID] = u.Email
	}
	var members []Membership
	if err := db.NewSelect().Model(&members).Scan(ctx); err != nil {
		return st, nil, err
	}
	for _, m := range members {
		switch g := byID[m.GroupID]; {
		case g == nil:
		case m.Source == SourceIdP:
			g.IdPMembers = append(g.IdPMembers, emails[m.UserID])
		default:
			g.Members = append(g.Members, StateMember{Email: emails[m.UserID], ExpiresAt: m.ExpiresAt})
		}
	}
	var mappings []IdPGroupMapping
	if err := db.NewSelect().Model(&mappings).Scan(ctx); err != nil {
		return st, nil, err
	}
	for _, m := range mappings {
		if g := byID[m.GroupID]; g != nil {
			g.IdPGroups = append(g.IdPGroups, m.IdPGroup)
		}
	}
	var managers []GroupManager
	if err := db.NewSelect().Model(&managers).Scan(ctx); err != nil {
		return st, nil, err
	}
	for _, m := range managers {
		if g := byID[m.GroupID]; g != nil {
			g.Managers = append(g.Managers, emails[m.UserID])
		}
	}
	var grants []Grant
	if err := db.NewSelect().Model(&grants).Scan(ctx); err != nil {
		return st, nil, err
	}
	for _, gr := range grants {
		if g := byID[gr.GroupID]; g != nil {
			st.Grants = append(st.Grants, StateGrant{Dashboard: gr.Dashboard, Group: g.Name})
		}
	}
	var apps []App
	if err := db.NewSelect().Model(&apps).Scan(ctx); err != nil {
		return st, nil, err
	}
	for _, a := range apps {
		st.Apps = append(st.Apps, StateApp{Slug: a.Slug, URL: a.Upstream, Title: a.Title, Description: a.Description, UserHeader: a.UserHeader, ExternalURL: a.ExternalURL})
	}
	st.Normalize()
	return st, users, nil
}

// Normalize sorts everything in st into its stable order: groups by name
// regardless of case, managers and members by email, grants by dashboard
// and group. Two equal states normalize to the same value.
func (st *AccessState) Normalize() {
	slices.SortFunc(st.Groups, func(a, b StateGroup) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	for i := range st.Groups {
		g := &st.Groups[i]
		slices.Sort(g.Managers)
		slices.Sort(g.IdPGroups)
		slices.Sort(g.IdPMembers)
		slices.SortFunc(g.Members, func(a, b StateMember) int { return strings.Compare(a.Email, b.Email) })
	}
	slices.SortFunc(st.Grants, func(a, b StateGrant) int {
		return cmp.Or(strings.Compare(a.Dashboard, b.Dashboard), strings.Compare(strings.ToLower(a.Group), strings.ToLower(b.Group)))
	})
	slices.SortFunc(st.Apps, func(a, b StateApp) int { return strings.Compare(a.Slug, b.Slug) })
}

// DiffAccess returns the changes that turn have into want, group by group
// (in want's order, then the removed groups), then grants. A group absent
// from want is removed with its memberships, managers and grants, shown as
// one line.
func DiffAccess(have, want AccessState) AccessPlan {
	var p AccessPlan
	haveGroups := make(map[string]*StateGroup, len(have.Groups))
	for i := range have.Groups {
		haveGroups[strings.ToLower(have.Groups[i].Name)] = &have.Groups[i]
	}
	wanted := make(map[string]bool, len(want.Groups))
	add := func(c AccessChange) { p.Changes = append(p.Changes, c) }
	for _, w := range want.Groups {
		key := strings.ToLower(w.Name)
		wanted[key] = true
		h := haveGroups[key]
		if h == nil {
			h = &StateGroup{}
			add(AccessChange{Op: '+', Kind: ChangeGroup, Group: w.Name, After: w.Description})
		} else {
			if h.Name != w.Name {
				add(AccessChange{Op: '~', Kind: ChangeGroup, Group: w.Name, Before: h.Name})
			}
			if h.Description != w.Description {
				add(AccessChange{Op: '~', Kind: ChangeDescription, Group: w.Name, Before: h.Description, After: w.Description})
			}
		}
		// Managers, IdP mappings and members: sorted lists merged.
		same := func(s string) string { return s }
		mergeSorted(h.Managers, w.Managers, same,
			func(m string) { add(AccessChange{Op: '-', Kind: ChangeManager, Group: w.Name, Subject: m}) },
			func(m string) { add(AccessChange{Op: '+', Kind: ChangeManager, Group: w.Name, Subject: m}) },
			nil)
		mergeSorted(h.IdPGroups, w.IdPGroups, same,
			func(g string) { add(AccessChange{Op: '-', Kind: ChangeMapping, Group: w.Name, Subject: g}) },
			func(g string) { add(AccessChange{Op: '+', Kind: ChangeMapping, Group: w.Name, Subject: g}) },
			nil)
		mergeSorted(h.Members, w.Members, func(m StateMember) string { return m.Email },
			func(m StateMember) { add(AccessChange{Op: '-', Kind: ChangeMember, Group: w.Name, Subject: m.Email}) },
			func(m StateMember) {
				op := byte('+')
				if _, fromIdP := slices.BinarySearch(h.IdPMembers, m.Email); fromIdP {
					op = '~' // the IdP's membership becomes the file's
				}
				add(AccessChange{Op: op, Kind: ChangeMember, Group: w.Name, Subject: m.Email, ExpiresAt: m.ExpiresAt})
			},
			func(hm, wm StateMember) {
				if hm.ExpiresAt != wm.ExpiresAt {
					add(AccessChange{Op: '~', Kind: ChangeExpiry, Group: w.Name, Subject: wm.Email,
						Before: FormatExpiry(hm.ExpiresAt), After: FormatExpiry(wm.ExpiresAt), ExpiresAt: wm.ExpiresAt})
				}
			})
	}
	for _, h := range have.Groups {
		if !wanted[strings.ToLower(h.Name)] {
			add(AccessChange{Op: '-', Kind: ChangeGroup, Group: h.Name,
				Counts: plural(len(h.Members)+len(h.IdPMembers), "member") + ", " + plural(len(h.Managers), "manager")})
		}
	}
	// Grants: both sorted by dashboard, then group regardless of case. A
	// removed group's grants go with it (its line says so).
	grantKey := func(g StateGrant) string { return g.Dashboard + "\x00" + strings.ToLower(g.Group) }
	mergeSorted(have.Grants, want.Grants, grantKey,
		func(g StateGrant) {
			if wanted[strings.ToLower(g.Group)] {
				add(AccessChange{Op: '-', Kind: ChangeGrant, Group: g.Group, Subject: g.Dashboard})
			}
		},
		func(g StateGrant) {
			add(AccessChange{Op: '+', Kind: ChangeGrant, Group: g.Group, Subject: g.Dashboard})
		},
		nil)
	// Apps, by slug.
	mergeSorted(have.Apps, want.Apps, func(a StateApp) string { return a.Slug },
		func(a StateApp) { add(AccessChange{Op: '-', Kind: ChangeApp, Subject: a.Slug, Before: a.summary()}) },
		func(a StateApp) { add(AccessChange{Op: '+', Kind: ChangeApp, Subject: a.Slug, After: a.summary()}) },
		func(h, w StateApp) {
			if h != w {
				add(AccessChange{Op: '~', Kind: ChangeApp, Subject: w.Slug, Before: h.summary(), After: w.summary()})
			}
		})
	return p
}

// mergeSorted walks have and want, both sorted by key, and calls removed
// for what only have holds, added for what only want holds and, when not
// nil, both for what the two share.
func mergeSorted[T any](have, want []T, key func(T) string, removed, added func(T), both func(h, w T)) {
	for len(have) > 0 || len(want) > 0 {
		switch {
		case len(want) == 0 || (len(have) > 0 && key(have[0]) < key(want[0])):
			removed(have[0])
			have = have[1:]
		case len(have) == 0 || key(want[0]) < key(have[0]):
			added(want[0])
			want = want[1:]
		default:
			if both != nil {
				both(have[0], want[0])
			}
			have, want = have[1:], want[1:]
		}
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// accessBatch is how many rows one statement of an apply writes.
const accessBatch = 500

// applyPlan writes plan inside tx, with its audit events.
func (s *Store) applyPlan(ctx context.Context, tx bun.Tx, a Actor, plan AccessPlan, want AccessState, users map[string]int64, file, sha256 string) error {
	now := s.nowMS()
	// Group ids by name regardless of case, for the existing groups.
	var groups []Group
	if err := tx.NewSelect().Model(&groups).Scan(ctx); err != nil {
		return err
	}
	ids := make(map[string]int64, len(groups))
	for _, g := range groups {
		ids[g.NameKey] = g.ID
	}
	wantApps := make(map[string]StateApp, len(want.Apps))
	for _, a := range want.Apps {
		wantApps[a.Slug] = a
	}
	descriptions := make(map[string]string, len(want.Groups))
	for _, g := range want.Groups {
		descriptions[strings.ToLower(g.Name)] = g.Description
	}
	userID := func(email string) (int64, error) {
		id, ok := users[email]
		if !ok {
			return 0, fmt.Errorf("no user with email %s", email)
		}
		return id, nil
	}
	var events []AuditEvent
	audit := func(action, target string, detail map[string]any) error {
		detail["apply"] = sha256
		row, err := s.auditRow(a, now, Event{Action: action, Target: target, Detail: detail})
		events = append(events, row)
		return err
	}

	// Removed groups go first (their names may be taken by new ones),
	// then new and renamed groups, so every later change has its group id.
	for _, c := range plan.Changes {
		if c.Kind != ChangeGroup || c.Op != '-' {
			continue
		}
		id := ids[strings.ToLower(c.Group)]
		for _, m := range []any{(*Membership)(nil), (*Grant)(nil), (*GroupManager)(nil), (*IdPGroupMapping)(nil)} {
			if _, err := tx.NewDelete().Model(m).Where("group_id = ?", id).Exec(ctx); err != nil {
				return err
			}
		}
		if _, err := tx.NewDelete().Model((*Group)(nil)).Where("id = ?", id).Exec(ctx); err != nil {
			return err
		}
		delete(ids, strings.ToLower(c.Group))
		if err := audit(ActionGroupDelete, c.Group, map[string]any{"before": map[string]any{"name": c.Group, "removed": c.Counts}}); err != nil {
			return err
		}
	}
	var newGroups []Group
	updated := map[string]bool{}
	for _, c := range plan.Changes {
		key := strings.ToLower(c.Group)
		switch {
		case c.Kind == ChangeGroup && c.Op == '+':
			newGroups = append(newGroups, Group{Name: c.Group, NameKey: key, Description: descriptions[key], CreatedAt: now, UpdatedAt: now})
			if err := audit(ActionGroupCreate, c.Group, map[string]any{"after": map[string]any{"name": c.Group, "description": descriptions[key]}}); err != nil {
				return err
			}
		case (c.Kind == ChangeGroup && c.Op == '~' || c.Kind == ChangeDescription) && !updated[key]:
			updated[key] = true // a rename writes the description too
			if _, err := tx.NewUpdate().Model((*Group)(nil)).Set("name = ?, description = ?, updated_at = ?", c.Group, descriptions[key], now).
				Where("id = ?", ids[key]).Exec(ctx); err != nil {
				return err
			}
			before := map[string]any{"name": c.Group}
			if c.Kind == ChangeGroup {
				before["name"] = c.Before
			} else {
				before["description"] = c.Before
			}
			for _, d := range plan.Changes {
				if d.Kind == ChangeDescription && strings.EqualFold(d.Group, c.Group) {
					before["description"] = d.Before
				}
			}
			if err := audit(ActionGroupUpdate, c.Group, map[string]any{"before": before,
				"after": map[string]any{"name": c.Group, "description": descriptions[key]}}); err != nil {
				return err
			}
		}
	}
	for chunk := range slices.Chunk(newGroups, accessBatch) {
		if _, err := tx.NewInsert().Model(&chunk).Returning("id").Exec(ctx); err != nil {
			return err
		}
		for _, g := range chunk {
			ids[g.NameKey] = g.ID
		}
	}

	// Memberships, managers and grants, batched per kind.
	var addMembers []Membership
	var addManagers []GroupManager
	var addGrants []Grant
	var addMappings []IdPGroupMapping
	removeMembers := map[int64][]int64{} // group id → user ids
	removeManagers := map[int64][]int64{}
	for _, c := range plan.Changes {
		gid := ids[strings.ToLower(c.Group)]
		target := c.Group + " / " + c.Subject
		var err error
		switch c.Kind {
		case ChangeMember:
			var uid int64
			if uid, err = userID(c.Subject); err != nil {
				return err
			}
			switch c.Op {
			case '+':
				addMembers = append(addMembers, Membership{GroupID: gid, UserID: uid, ExpiresAt: c.ExpiresAt, CreatedAt: now, Source: SourceManual})
				after := map[string]any{"group": c.Group, "user": c.Subject}
				if c.ExpiresAt != 0 {
					after["expires"] = FormatExpiry(c.ExpiresAt)
				}
				err = audit(ActionMemberAdd, target, map[string]any{"after": after})
			case '~': // an IdP-synced membership the file now lists
				q := tx.NewUpdate().Model((*Membership)(nil)).Set("source = ?, idp_group = ''", SourceManual).
					Where("group_id = ? AND user_id = ?", gid, uid)
				if c.ExpiresAt == 0 {
					q = q.Set("expires_at = NULL")
				} else {
					q = q.Set("expires_at = ?", c.ExpiresAt)
				}
				if _, err := q.Exec(ctx); err != nil {
					return err
				}
				err = audit(ActionMemberAdd, target, map[string]any{"before": map[string]any{"source": SourceIdP},
					"after": map[string]any{"source": SourceManual, "expires": FormatExpiry(c.ExpiresAt)}})
			default:
				removeMembers[gid] = append(removeMembers[gid], uid)
				err = audit(ActionMemberRemove, target, map[string]any{"before": map[string]any{"group": c.Group, "user": c.Subject}})
			}
		case ChangeExpiry:
			var uid int64
			if uid, err = userID(c.Subject); err != nil {
				return err
			}
			q := tx.NewUpdate().Model((*Membership)(nil)).Where("group_id = ? AND user_id = ?", gid, uid)
			if c.ExpiresAt == 0 {
				q = q.Set("expires_at = NULL")
			} else {
				q = q.Set("expires_at = ?", c.ExpiresAt)
			}
			if _, err := q.Exec(ctx); err != nil {
				return err
			}
			err = audit(ActionMemberExpires, target, map[string]any{"before": map[string]any{"expires": c.Before}, "after": map[string]any{"expires": c.After}})
		case ChangeManager:
			var uid int64
			if uid, err = userID(c.Subject); err != nil {
				return err
			}
			if c.Op == '+' {
				addManagers = append(addManagers, GroupManager{GroupID: gid, UserID: uid, CreatedAt: now})
				err = audit(ActionManagerAdd, target, map[string]any{"after": map[string]any{"group": c.Group, "manager": c.Subject}})
			} else {
				removeManagers[gid] = append(removeManagers[gid], uid)
				err = audit(ActionManagerRemove, target, map[string]any{"before": map[string]any{"group": c.Group, "manager": c.Subject}})
			}
		case ChangeMapping:
			target = c.Group + " ← " + c.Subject
			if c.Op == '+' {
				addMappings = append(addMappings, IdPGroupMapping{GroupID: gid, IdPGroup: c.Subject, CreatedAt: now})
				err = audit(ActionGroupMap, target, map[string]any{"after": map[string]any{"group": c.Group, "idp_group": c.Subject}})
			} else {
				if _, err := tx.NewDelete().Model((*IdPGroupMapping)(nil)).Where("group_id = ? AND idp_group = ?", gid, c.Subject).Exec(ctx); err != nil {
					return err
				}
				err = audit(ActionGroupUnmap, target, map[string]any{"before": map[string]any{"group": c.Group, "idp_group": c.Subject}})
			}
		case ChangeApp:
			a := wantApps[c.Subject]
			row := App{Slug: c.Subject, Upstream: a.URL, Title: a.Title, Description: a.Description, UserHeader: a.UserHeader, ExternalURL: a.ExternalURL, CreatedAt: now, UpdatedAt: now}
			after := appAudit(row)
			switch c.Op {
			case '+':
				if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
					return err
				}
				err = audit(ActionAppCreate, c.Subject, map[string]any{"after": after})
			case '~':
				if _, err := tx.NewUpdate().Model(&row).Column("upstream", "title", "description", "user_header", "external_url", "updated_at").WherePK().Exec(ctx); err != nil {
					return err
				}
				err = audit(ActionAppUpdate, c.Subject, map[string]any{"before": c.Before, "after": after})
			default:
				for _, m := range []any{(*AppCode)(nil), (*App)(nil)} {
					col := "app"
					if _, ok := m.(*App); ok {
						col = "slug"
					}
					if _, err := tx.NewDelete().Model(m).Where("? = ?", bun.Ident(col), c.Subject).Exec(ctx); err != nil {
						return err
					}
				}
				err = audit(ActionAppDelete, c.Subject, map[string]any{"before": c.Before})
			}
		case ChangeGrant:
			target = c.Subject + " → " + c.Group
			if c.Op == '+' {
				addGrants = append(addGrants, Grant{Dashboard: c.Subject, GroupID: gid, CreatedAt: now})
				err = audit(ActionGrantAdd, target, map[string]any{"after": map[string]any{"dashboard": c.Subject, "group": c.Group}})
			} else {
				if _, err := tx.NewDelete().Model((*Grant)(nil)).Where("dashboard = ? AND group_id = ?", c.Subject, gid).Exec(ctx); err != nil {
					return err
				}
				err = audit(ActionGrantRemove, target, map[string]any{"before": map[string]any{"dashboard": c.Subject, "group": c.Group}})
			}
		}
		if err != nil {
			return err
		}
	}
	for _, del := range []struct {
		model any
		rows  map[int64][]int64
	}{{(*Membership)(nil), removeMembers}, {(*GroupManager)(nil), removeManagers}} {
		for gid, uids := range del.rows {
			for chunk := range slices.Chunk(uids, accessBatch) {
				if _, err := tx.NewDelete().Model(del.model).Where("group_id = ? AND user_id IN (?)", gid, bun.In(chunk)).Exec(ctx); err != nil {
					return err
				}
			}
		}
	}
	if err := insertChunks(ctx, tx, addMembers); err != nil {
		return err
	}
	if err := insertChunks(ctx, tx, addManagers); err != nil {
		return err
	}
	if err := insertChunks(ctx, tx, addGrants); err != nil {
		return err
	}
	if err := insertChunks(ctx, tx, addMappings); err != nil {
		return err
	}
	added, changed, removed := plan.Counts()
	summary, err := s.auditRow(a, now, Event{Action: ActionAccessApply, Target: file,
		Detail: map[string]any{"sha256": sha256, "added": added, "changed": changed, "removed": removed}})
	if err != nil {
		return err
	}
	events = append(events, summary)
	return insertChunks(ctx, tx, events)
}

// insertChunks inserts rows in statements of accessBatch rows.
func insertChunks[T any](ctx context.Context, tx bun.Tx, rows []T) error {
	for chunk := range slices.Chunk(rows, accessBatch) {
		if _, err := tx.NewInsert().Model(&chunk).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Removals counts what going from one access state to another removes, of
// the kinds a careless file would wipe out (groups, memberships, grants),
// beside how many there were: the removal guard of `access apply` reads
// it. A removed group's memberships and grants count as removed too.
type Removals struct {
	Groups, Members, Grants          int
	HadGroups, HadMembers, HadGrants int
}

// Total is the number of groups, memberships and grants removed.
func (r Removals) Total() int { return r.Groups + r.Members + r.Grants }

// CountRemovals compares have with want by name regardless of case, as
// DiffAccess does.
func CountRemovals(have, want AccessState) Removals {
	var r Removals
	wantGroups := make(map[string]bool, len(want.Groups))
	wantMembers := make(map[string]bool)
	for _, g := range want.Groups {
		k := strings.ToLower(g.Name)
		wantGroups[k] = true
		for _, m := range g.Members {
			wantMembers[k+"\x00"+m.Email] = true
		}
	}
	for _, g := range have.Groups {
		k := strings.ToLower(g.Name)
		r.HadGroups++
		if !wantGroups[k] {
			r.Groups++
		}
		for _, m := range g.Members {
			r.HadMembers++
			if !wantMembers[k+"\x00"+m.Email] {
				r.Members++
			}
		}
	}
	wantGrants := make(map[string]bool, len(want.Grants))
	for _, g := range want.Grants {
		wantGrants[g.Dashboard+"\x00"+strings.ToLower(g.Group)] = true
	}
	for _, g := range have.Grants {
		r.HadGrants++
		if !wantGrants[g.Dashboard+"\x00"+strings.ToLower(g.Group)] {
			r.Grants++
		}
	}
	return r
}
