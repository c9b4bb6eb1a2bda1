package app

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/components"
	"gatehouse/db"
)

func TestAdminAuditLog(t *testing.T) {
	ta, c, _ := adminApp(t) // the admin's login is the first event (2026-11-23)
	ctx := context.Background()
	ta.Clock.Advance(24 * time.Hour) // 2026-11-24
	for i := 0; i < 55; i++ {
		if _, err := ta.store.CreateGroup(ctx, db.Actor{Email: "cli:ops"}, fmt.Sprintf("g%02d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	ta.Clock.Advance(24 * time.Hour) // 2026-11-25
	c = ta.login(t, "admin@example.com")
	res, body := ta.post(t, c, "/admin/groups", url.Values{"name": {"<Newest>"}})
	wantStatus(t, res, body, 303)

	res, body = ta.get(t, c, "/admin/audit", false)
	wantStatus(t, res, body, 200)
	if i, j := strings.Index(body, "&lt;Newest&gt;"), strings.Index(body, ">g54<"); i < 0 || j < 0 || i > j {
		t.Error("not newest first")
	}
	if !strings.Contains(body, "1–50 events") || !strings.Contains(body, `href="/admin/audit?page=2"`) {
		t.Error("no pagination")
	}
	if !strings.Contains(body, `name: “&lt;Newest&gt;”`) {
		t.Error("detail not rendered readably")
	}
	for _, tc := range []struct {
		query     string
		want, not []string
	}{
		{"actor=OPS", []string{"cli:ops", "g54"}, []string{"&lt;Newest&gt;"}},
		{"action=login", []string{">login<"}, []string{">group.create<"}},
		{"action=group.", []string{">group.create<"}, []string{">login<"}},
		{"from=2026-11-25", []string{"&lt;Newest&gt;"}, []string{">g54<"}},
		{"to=2026-11-23", []string{">login<"}, []string{"group.create"}},
		{"from=2026-11-24&to=2026-11-24&actor=cli", []string{"g54"}, []string{"&lt;Newest&gt;", ">login<"}},
		{"action=nothing.like.this", []string{"No events."}, nil},
	} {
		res, body := ta.get(t, c, "/admin/audit?"+tc.query, true)
		wantStatus(t, res, body, 200)
		if !strings.HasPrefix(body, `<div id="audit-table">`) {
			t.Errorf("%s: htmx answer is not the table", tc.query)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: lacks %q", tc.query, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(body, n) {
				t.Errorf("%s: shows %q", tc.query, n)
			}
		}
	}
	_, body = ta.get(t, c, "/admin/audit?page=2&action=group.create", false)
	if !strings.Contains(body, "51–56 events") || !strings.Contains(body, `href="/admin/audit?action=group.create"`) {
		t.Error("page 2 keeps the filter and links back")
	}
	res, body = ta.get(t, c, "/admin/audit?from=yesterday", false)
	wantStatus(t, res, body, 422)
	if !strings.Contains(body, "“From” is not a date like 2026-12-31.") {
		t.Error("bad date not explained")
	}
	for _, htmx := range []bool{false, true} {
		res, body = ta.get(t, c, "/admin/audit?from=2026-13-40&to=tomorrow", htmx)
		wantStatus(t, res, body, 422)
		if !strings.Contains(body, "“From” is not a date like 2026-12-31; “To” is not a date like 2026-12-31.") {
			t.Errorf("htmx=%v: month 13 and a word not explained:\n%s", htmx, body)
		}
		if strings.Contains(body, "No events.") || strings.Contains(body, "<tbody>") {
			t.Errorf("htmx=%v: a table beside the refusal, as if the dates had been searched", htmx)
		}
	}
}

func TestAuditDetailReadsLikeAChange(t *testing.T) {
	for in, want := range map[string]string{
		``: ``,
		`{"before":{"admin":true},"after":{"admin":false}}`:                                `admin: true → false`,
		`{"before":{"name":"a","description":"x"},"after":{"name":"b","description":"x"}}`: "name: “a” → “b”",
		`{"after":{"group":"g","user":"u@x"},"request":7}`:                                 "group: “g”\nuser: “u@x”\nrequest: 7",
		`{"before":{"members":2,"grants":["a","b"]}}`:                                      "was grants: “a”, “b”\nwas members: 2",
		`{"reason":"unknown email"}`:                                                       "reason: “unknown email”",
		`not json`:                                                                         `not json`,
		// JSON held in a string reads decoded, not escaped.
		`{"after":{"grants":"[\"sales\"]"}}`: "grants: “sales”",
		`{"after":{"x":{"a":"<b>"}}}`:        "x: {\n  \"a\": \"<b>\"\n}",
	} {
		if got := components.AuditDetail(in); got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
}
