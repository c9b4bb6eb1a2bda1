package dashboards

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/db"
)

// Viewer is who asks to see a dashboard.
type Viewer struct {
	UserID   int64
	Email    string
	IsAdmin  bool
	IsActive bool
}

// ViewerOf returns the Viewer for a user.
func ViewerOf(u db.User) Viewer {
	return Viewer{UserID: u.ID, Email: u.Email, IsAdmin: u.IsAdmin, IsActive: u.IsActive}
}

// Decision codes.
const (
	CodeAdmin      = "admin"       // allowed: admins see everything
	CodeGrant      = "grant"       // allowed: member of a granting group
	CodeInactive   = "inactive"    // denied: the account is deactivated
	CodeNoGrant    = "no-grant"    // denied: no group is granted the dashboard
	CodeNotMember  = "not-member"  // denied: not in any granting group
	CodeExpired    = "expired"     // denied: membership in a granting group expired
	CodePanelGroup = "panel-group" // denied: the panel needs one more group
)

// Decision is an access decision with its reason, so the denial fragment,
// the audit log, the explainer and `access check` all say the same thing.
type Decision struct {
	Allowed bool
	Code    string
	// Reason is a plain sentence for people ("you are not in a group that has access").
	Reason string
	// Via is the group whose grant allowed access (CodeGrant).
	Via string
	// ViaIdP is the identity provider group that put the viewer in Via
	// (group sync), "" for a membership added by hand.
	ViaIdP string
	// Candidates are the groups that would grant access when denied.
	Candidates []string
}

// Facts are the stored facts a decision needs, loaded before any panel data.
type Facts struct {
	// Granting lists the groups granted the dashboard and the viewer's membership in each.
	Granting []db.GrantingGroup
	// PanelGroup is the viewer's membership in the panel's extra group
	// (nil when the panel has none or the viewer is not in it).
	PanelGroup *db.Membership
	NowMS      int64
}

// Decide is the one function that decides whether v may see dashboard d
// (and panel p, when not nil), and says why. It is pure: Check loads the
// facts and calls it.
func Decide(v Viewer, d *Dashboard, p *Panel, f Facts) Decision {
	if !v.IsActive {
		return Decision{Code: CodeInactive, Reason: "your account is deactivated"}
	}
	if v.IsAdmin {
		return Decision{Allowed: true, Code: CodeAdmin, Reason: "admins can open every dashboard"}
	}
	var via, viaIdP string
	var expired []string
	for _, g := range f.Granting {
		switch {
		case !g.Member:
		case g.ExpiresAt != 0 && g.ExpiresAt <= f.NowMS:
			expired = append(expired, g.GroupName)
		case via == "":
			via, viaIdP = g.GroupName, g.IdPGroup
		}
	}
	if via == "" {
		if len(f.Granting) == 0 {
			return Decision{Code: CodeNoGrant, Reason: "no group has been granted this dashboard yet, so only admins can open it"}
		}
		// Only a denial names the candidates, so an allowed request (every
		// polled panel) builds no list.
		candidates := make([]string, len(f.Granting))
		for i, g := range f.Granting {
			candidates[i] = g.GroupName
		}
		if len(expired) > 0 {
			return Decision{Code: CodeExpired, Candidates: candidates,
				Reason: "your membership in " + quoteList(expired) + " has expired"}
		}
		return Decision{Code: CodeNotMember, Candidates: candidates,
			Reason: "you are not in a group that has access (" + quoteList(candidates) + " would grant it)"}
	}
	if p != nil && p.RequireGroup != "" {
		m := f.PanelGroup
		if m == nil || (m.ExpiresAt != 0 && m.ExpiresAt <= f.NowMS) {
			return Decision{Code: CodePanelGroup, Candidates: []string{p.RequireGroup},
				Reason: "this panel is only for members of " + strconv.Quote(p.RequireGroup)}
		}
	}
	return Decision{Allowed: true, Code: CodeGrant, Via: via, ViaIdP: viaIdP, Reason: rememberedGrantReason(via, viaIdP)}
}

// grantReason is the reason of an access allowed through group via (and
// identity provider group viaIdP, if any).
func grantReason(via, viaIdP string) string {
	if viaIdP != "" {
		return "you are a member of " + strconv.Quote(via) + " through the identity provider group " + strconv.Quote(viaIdP) + ", which is granted this dashboard"
	}
	return "you are a member of " + strconv.Quote(via) + ", which is granted this dashboard"
}

// grantReasons remembers grantReason's sentences: every polled panel is
// allowed, through the same few groups, and would build the same sentence
// again each time. Bounded at maxGrantReasons (then emptied).
var grantReasons struct {
	m sync.Map // grantVia -> string
	n atomic.Int64
}

type grantVia struct{ via, viaIdP string }

const maxGrantReasons = 4096

func rememberedGrantReason(via, viaIdP string) string {
	key := grantVia{via, viaIdP}
	if s, ok := grantReasons.m.Load(key); ok {
		return s.(string)
	}
	s := grantReason(via, viaIdP)
	if grantReasons.n.Add(1) > maxGrantReasons {
		grantReasons.m.Clear()
		grantReasons.n.Store(1)
	}
	grantReasons.m.Store(key, s)
	return s
}

// quoteList quotes each name as %q does and joins them with ", ". Every
// polled panel decides, so this avoids fmt.
func quoteList(names []string) string {
	b := make([]byte, 0, 16*len(names))
	for i, n := range names {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendQuote(b, n)
	}
	return string(b)
}

// Check loads the facts for v, d and p from the store and decides at the
// store's time. Admins and inactive viewers are decided without a query.
func Check(ctx context.Context, s *db.Store, v Viewer, d *Dashboard, p *Panel) (Decision, error) {
	return CheckAt(ctx, s, v, d, p, s.Now())
}

// CheckAt is Check deciding at now (memberships expire by it), for a
// caller that has read the clock already.
func CheckAt(ctx context.Context, s *db.Store, v Viewer, d *Dashboard, p *Panel, now time.Time) (Decision, error) {
	f := Facts{NowMS: now.UnixMilli()}
	if !v.IsActive || v.IsAdmin {
		return Decide(v, d, p, f), nil
	}
	var err error
	if f.Granting, err = s.GrantingGroups(ctx, v.UserID, d.Slug); err != nil {
		return Decision{}, err
	}
	if p != nil && p.RequireGroup != "" {
		m, err := s.MembershipIn(ctx, v.UserID, p.RequireGroup)
		switch {
		case err == nil:
			f.PanelGroup = &m
		case !errors.Is(err, db.ErrNotFound):
			return Decision{}, err
		}
	}
	return Decide(v, d, p, f), nil
}

// Group management decision codes.
const (
	CodeManager    = "manager"     // allowed: manages the group
	CodeNotManager = "not-manager" // denied: manages no such group
	CodeSelf       = "self"        // denied: a manager giving themselves access
)

// selfReason is why a manager may not give themselves access.
const selfReason = "managing a group does not make you a member of it; only an admin can give you access"

// ManageFacts are the stored facts a group-management decision needs.
type ManageFacts struct {
	// Managed are the groups the viewer manages.
	Managed []db.GroupOption
	// Granting are the groups granted the request's dashboard (DecideRequest).
	Granting []db.GrantingGroup
	// Requester is the user who asked (DecideRequest).
	Requester int64
}

// DecideGroup is the one function that decides whether v may run group
// groupID as a manager: open its page, add and remove its members and set
// their expiries. Admins may; a manager may for the groups they manage
// only. Everything else in /admin stays for admins. It says why, like Decide.
func DecideGroup(v Viewer, groupID int64, f ManageFacts) Decision {
	if !v.IsActive {
		return Decision{Code: CodeInactive, Reason: "your account is deactivated"}
	}
	if v.IsAdmin {
		return Decision{Allowed: true, Code: CodeAdmin, Reason: "admins can manage every group"}
	}
	for _, g := range f.Managed {
		if g.ID == groupID {
			return Decision{Allowed: true, Code: CodeManager, Via: g.Name,
				Reason: "you are a manager of " + strconv.Quote(g.Name)}
		}
	}
	return Decision{Code: CodeNotManager, Reason: "you are not a manager of this group"}
}

// DecideRequest decides whether v may decide (approve or deny) an access
// request for dashboard, and into which groups an approval may put the
// requester: admins may, into any group granted the dashboard; a manager
// may when they manage a group granted it, into those groups only
// (Candidates), and never their own request (f.Requester). Via is the first
// such group.
func DecideRequest(v Viewer, dashboard string, f ManageFacts) Decision {
	if !v.IsActive {
		return Decision{Code: CodeInactive, Reason: "your account is deactivated"}
	}
	var all []string
	for _, g := range f.Granting {
		all = append(all, g.GroupName)
	}
	if v.IsAdmin {
		return Decision{Allowed: true, Code: CodeAdmin, Candidates: all, Reason: "admins can decide every request"}
	}
	if f.Requester != 0 && f.Requester == v.UserID {
		return Decision{Code: CodeSelf, Reason: "this is your own request: " + selfReason}
	}
	managed := make(map[int64]bool, len(f.Managed))
	for _, g := range f.Managed {
		managed[g.ID] = true
	}
	var mine []string
	for _, g := range f.Granting {
		if managed[g.GroupID] {
			mine = append(mine, g.GroupName)
		}
	}
	if len(mine) == 0 {
		return Decision{Code: CodeNotManager,
			Reason: "you do not manage a group that is granted " + strconv.Quote(dashboard)}
	}
	return Decision{Allowed: true, Code: CodeManager, Via: mine[0], Candidates: mine,
		Reason: "you are a manager of " + quoteList(mine) + ", which " + grantVerb(len(mine)) + " granted " + strconv.Quote(dashboard)}
}

// DecideMember decides whether v, allowed to run a group (DecideGroup),
// may add userID to it or change their membership's expiry: admins may for
// anyone, a manager for anyone but themselves, since managing a group does
// not make one a member (removing oneself is always allowed).
func DecideMember(v Viewer, userID int64) Decision {
	if !v.IsActive {
		return Decision{Code: CodeInactive, Reason: "your account is deactivated"}
	}
	if v.IsAdmin {
		return Decision{Allowed: true, Code: CodeAdmin, Reason: "admins can manage every group"}
	}
	if userID == v.UserID {
		return Decision{Code: CodeSelf, Reason: selfReason}
	}
	return Decision{Allowed: true, Code: CodeManager, Reason: "you are a manager of this group"}
}

func grantVerb(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// CheckGroup loads the facts for v and decides with DecideGroup. Admins and
// inactive viewers are decided without a query.
func CheckGroup(ctx context.Context, s *db.Store, v Viewer, groupID int64) (Decision, error) {
	var f ManageFacts
	if v.IsActive && !v.IsAdmin {
		var err error
		if f.Managed, err = s.ManagedGroups(ctx, v.UserID); err != nil {
			return Decision{}, err
		}
	}
	return DecideGroup(v, groupID, f), nil
}

// CheckRequest loads the facts for v and a request (its requester and
// dashboard) and decides with DecideRequest. It also returns the groups
// granted the dashboard, each with the requester's membership, for the
// approve form.
func CheckRequest(ctx context.Context, s *db.Store, v Viewer, requesterID int64, dashboard string) (Decision, []db.GrantingGroup, error) {
	f := ManageFacts{Requester: requesterID}
	if !v.IsActive {
		return DecideRequest(v, dashboard, f), nil, nil
	}
	var err error
	if f.Granting, err = s.GrantingGroups(ctx, requesterID, dashboard); err != nil {
		return Decision{}, nil, err
	}
	if !v.IsAdmin {
		if f.Managed, err = s.ManagedGroups(ctx, v.UserID); err != nil {
			return Decision{}, nil, err
		}
	}
	return DecideRequest(v, dashboard, f), f.Granting, nil
}

// TheirReason rewrites a decision reason addressed to the viewer ("you are")
// for a third person reading the CLI or the explainer.
func TheirReason(s string) string {
	r := strings.NewReplacer("you are ", "they are ", "your ", "their ")
	return r.Replace(s)
}
