package app

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/db"
)

// TestRemoveMemberOffersUndo: removing a member answers the members
// section with "Removed …" and an Undo that puts the membership back with
// the expiry it had; the search results above are answered too, so the
// line that said "Added" for that person offers Add again.
func TestRemoveMemberOffersUndo(t *testing.T) {
	ctx := context.Background()
	ta := newTestApp(t)
	c := ta.login(t, ta.createUser(t, "root@example.com", true).Email)
	ann := ta.createUser(t, "ann@example.com", false)
	g := mustGroup(t, ta, "sales")
	base := "/admin/groups/" + idStr(g.ID)
	until := ta.now().Add(30 * 24 * time.Hour).Format("2006-01-02")

	res, body := ta.hxPost(t, c, base+"/members", url.Values{"user_id": {idStr(ann.ID)}, "expires": {until}})
	wantStatus(t, res, body, 200)
	if !strings.Contains(body, "Added until") {
		t.Fatalf("add: %s", body)
	}
	m, err := ta.store.MemberOf(ctx, g.ID, ann.ID)
	if err != nil {
		t.Fatal(err)
	}

	res, body = ta.hxPost(t, c, base+"/members/"+idStr(ann.ID)+"/remove", url.Values{"q": {"ann@"}})
	wantStatus(t, res, body, 200)
	if !strings.Contains(body, "Removed ann@example.com from sales.") || !strings.Contains(body, `id="members-undo"`) {
		t.Errorf("removal answer has no Undo:\n%s", body)
	}
	if !strings.Contains(body, `id="candidates"`) || !strings.Contains(body, `hx-swap-oob="true"`) ||
		!strings.Contains(body, `aria-label="Add ann@example.com"`) || strings.Contains(body, ">Added") {
		t.Errorf("the search results are not answered afresh (Add for ann again):\n%s", body)
	}
	if _, err := ta.store.MemberOf(ctx, g.ID, ann.ID); err == nil {
		t.Fatal("ann is still a member")
	}

	res, body = ta.hxPost(t, c, base+"/members", url.Values{"user_id": {idStr(ann.ID)}, "email": {ann.Email},
		"undo": {"1"}, "undo_expires_ms": {idStr(m.ExpiresAt)}})
	wantStatus(t, res, body, 200)
	if !strings.Contains(body, "ann@example.com is a member of sales again.") || !strings.Contains(body, `id="members"`) {
		t.Errorf("undo answer:\n%s", body)
	}
	back, err := ta.store.MemberOf(ctx, g.ID, ann.ID)
	if err != nil || back.ExpiresAt != m.ExpiresAt {
		t.Errorf("after Undo: %+v %v, want the expiry %d back", back, err, m.ExpiresAt)
	}
	if n := ta.countAudit(t, db.ActionMemberAdd, "sales / ann@example.com"); n != 2 {
		t.Errorf("%d member.add rows, want 2 (the add and the Undo)", n)
	}

	// An Undo sent twice changes nothing the second time and says why.
	res, body = ta.hxPost(t, c, base+"/members", url.Values{"user_id": {idStr(ann.ID)}, "email": {ann.Email},
		"undo": {"1"}, "undo_expires_ms": {idStr(m.ExpiresAt)}})
	wantStatus(t, res, body, 422)
	if !strings.Contains(body, "ann@example.com is already a member of sales.") || !strings.Contains(body, `id="members"`) {
		t.Errorf("a second Undo:\n%s", body)
	}
}

