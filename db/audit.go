package db

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Audit actions. Every login, logout, failure, throttle, admin change and
// denial is written with one of these.
const (
	ActionLogin          = "login"
	ActionLoginFailed    = "login.failed"
	ActionLoginThrottled = "login.throttled"
	ActionLogout         = "logout"
	ActionPasswordChange = "user.password"
	ActionSetup          = "setup.admin"
)

// Event describes an audit entry to write.
type Event struct {
	Action string
	Target string
	// Detail is marshalled to JSON (e.g. map[string]any{"before": …, "after": …}).
	Detail any
}

func (s *Store) insertAudit(ctx context.Context, db bun.IDB, a Actor, ev Event) error {
	row, err := s.auditRow(a, s.nowMS(), ev)
	if err != nil {
		return err
	}
	_, err = db.NewInsert().Model(&row).Exec(ctx)
	return err
}

// auditRow builds the audit row for ev by a at atMS.
func (s *Store) auditRow(a Actor, atMS int64, ev Event) (AuditEvent, error) {
	detail := ""
	if ev.Detail != nil {
		b, err := json.Marshal(ev.Detail)
		if err != nil {
			return AuditEvent{}, err
		}
		detail = string(b)
	}
	return AuditEvent{At: atMS, ActorID: a.ID, ActorEmail: a.Email, Action: ev.Action,
		Target: ev.Target, Detail: detail, IP: a.IP}, nil
}

// Audit writes one audit event on its own.
func (s *Store) Audit(ctx context.Context, a Actor, ev Event) error {
	return storageErr(s.insertAudit(ctx, s.DB, a, ev))
}

// AuditFilter narrows ListAudit.
type AuditFilter struct {
	Actor  string // substring of the actor's email
	Action string // exact action, or a prefix ending in "." (e.g. "login.")
	Since  time.Time
	Until  time.Time
	Limit  int
	Offset int
}

// ListAudit returns matching events, newest first, and the total count.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, int, error) {
	var events []AuditEvent
	if f.Limit <= 0 {
		f.Limit = 50
	}
	q := f.apply(s.DB.NewSelect().Model(&events))
	total, err := q.OrderExpr("at DESC, id DESC").Limit(int64(f.Limit)).Offset(int64(f.Offset)).ScanAndCount(ctx)
	return events, int(total), storageErr(err)
}

// apply adds f's conditions (not its limit and offset) to q.
func (f AuditFilter) apply(q *bun.SelectQuery) *bun.SelectQuery {
	if f.Actor != "" {
		// lower() on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not.
		q = q.Where("lower(actor_email) LIKE ? ESCAPE '\\'", "%"+escapeLike(strings.ToLower(f.Actor))+"%")
	}
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			q = q.Where("action LIKE ? ESCAPE '\\'", escapeLike(f.Action)+"%")
		} else {
			q = q.Where("action = ?", f.Action)
		}
	}
	if !f.Since.IsZero() {
		q = q.Where("at >= ?", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		q = q.Where("at < ?", f.Until.UnixMilli())
	}
	return q
}

// CountRecent counts events with action and target (or ip, when byIP) since t,
// and returns the time of the oldest of them.
func (s *Store) CountRecent(ctx context.Context, action, key string, byIP bool, since time.Time) (int, time.Time, error) {
	col := "target"
	if byIP {
		col = "ip"
	}
	var res struct {
		N      int   `bun:"n"`
		Oldest int64 `bun:"oldest"`
	}
	err := s.DB.NewSelect().TableExpr("audit_events").
		ColumnExpr("COUNT(*) AS n, COALESCE(MIN(at), 0) AS oldest").
		Where("action = ?", action).Where("? = ?", bun.Ident(col), key).Where("at >= ?", since.UnixMilli()).
		Scan(ctx, &res)
	return res.N, FromMS(res.Oldest), storageErr(err)
}

func escapeLike(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '%' || c == '_' || c == '\\' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// AuditDenial records an access denial unless the same actor was denied the
// same target within dedupe (so polling panels do not flood the log).
//
// A denied panel that keeps polling is the common case, so the check is a
// read (which on SQLite does not queue behind the write lock), and a
// denial this process has seen in the log is remembered: audit rows never
// change, so the memory cannot go stale within the window.
func (s *Store) AuditDenial(ctx context.Context, a Actor, target, code, reason string, dedupe time.Duration) error {
	now := s.nowMS()
	since := now - dedupe.Milliseconds()
	cache, key := s.authzCache(), denialKey{a.Email, target}
	if cache.deniedSince(key, since) {
		return nil
	}
	var last int64
	if err := s.DB.NewRaw(`SELECT COALESCE(MAX(at), 0) FROM audit_events
		WHERE action = ? AND actor_email = ? AND target = ? AND at > ?`,
		ActionAccessDenied, a.Email, target, since).Scan(ctx, &last); err != nil {
		return storageErr(err)
	}
	if last > 0 {
		cache.sawDenial(key, last)
		return nil
	}
	detail, _ := json.Marshal(map[string]string{"code": code, "reason": reason})
	var actorID any // NULL for anonymous actors, like nullzero in AuditEvent
	if a.ID != 0 {
		actorID = a.ID
	}
	// The insert still checks, for a concurrent request or instance.
	res, err := s.DB.NewRaw(`INSERT INTO audit_events (at, actor_id, actor_email, action, target, detail, ip)
		SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (
			SELECT 1 FROM audit_events WHERE action = ? AND actor_email = ? AND target = ? AND at > ?)`,
		now, actorID, a.Email, ActionAccessDenied, target, string(detail), a.IP,
		ActionAccessDenied, a.Email, target, since).Exec(ctx)
	if err != nil {
		return storageErr(err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		cache.sawDenial(key, now)
	}
	return nil
}
