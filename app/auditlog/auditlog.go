// Package auditlog gives the audit log's stable JSON form (JSON), shared by
// `gatehouse audit list --json` and --audit-log, and Start, which follows
// the audit table and writes each event, from any process or instance, to
// a file or stdout as it is committed, for log shippers.
package auditlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"gatehouse/db"
)

// auditRecord is the stable JSON form of one audit event, shared by
// `gatehouse audit list --json` and --audit-log (docs/operations.md lists
// the fields). Field names never change meaning; new fields may be added.
type auditRecord struct {
	ID         int64           `json:"id"`
	Time       string          `json:"time"` // RFC 3339, UTC, milliseconds
	ActorID    int64           `json:"actor_id,omitempty"`
	ActorEmail string          `json:"actor_email"`
	Action     string          `json:"action"`
	Target     string          `json:"target"`
	IP         string          `json:"ip,omitempty"`
	Detail     json.RawMessage `json:"detail,omitempty"`
}

// JSON encodes e as one line of JSON, newline included. The detail
// column holds JSON written by the store; it is embedded as an object, or
// as a string if it somehow is not valid JSON.
func JSON(e db.AuditEvent) []byte {
	rec := auditRecord{ID: e.ID, Time: e.Time().Format("2006-01-02T15:04:05.000Z07:00"), ActorID: e.ActorID,
		ActorEmail: e.ActorEmail, Action: e.Action, Target: e.Target, IP: e.IP}
	if e.Detail != "" {
		if json.Valid([]byte(e.Detail)) {
			rec.Detail = json.RawMessage(e.Detail)
		} else {
			rec.Detail, _ = json.Marshal(e.Detail)
		}
	}
	b, err := json.Marshal(rec)
	if err != nil { // cannot happen: every field is a string, a number or valid JSON
		b = []byte(fmt.Sprintf(`{"id":%d,"error":"unencodable"}`, e.ID))
	}
	return append(db.EscapeUnsafe(b), '\n')
}

// auditTail follows the audit table and writes each new event, from any
// process or instance, to w as it is committed.
//
// Events are found by id. On PostgreSQL ids come from a sequence, so a
// transaction can commit an id lower than one already seen; the tail keeps
// re-reading from the lowest id it has not seen, for up to gapWait, before
// it takes that id to belong to a transaction that rolled back. Nothing is
// written twice.
type auditTail struct {
	store   *db.Store
	w       io.Writer
	log     *slog.Logger
	every   time.Duration // how often to look for new events
	gapWait time.Duration // how long a missing id may still turn up
	now     func() time.Time

	next    int64               // every id below next is written or given up
	written map[int64]bool      // ids >= next already written
	gaps    map[int64]time.Time // ids >= next found missing, and when
}

func newAuditTail(store *db.Store, w io.Writer, log *slog.Logger) *auditTail {
	return &auditTail{store: store, w: w, log: log, every: time.Second, gapWait: 30 * time.Second, now: time.Now,
		written: map[int64]bool{}, gaps: map[int64]time.Time{}}
}

// start makes the tail begin after the newest event now in the log: the
// history is for `gatehouse audit list --json`.
func (t *auditTail) start(ctx context.Context) error {
	id, err := t.store.MaxAuditID(ctx)
	if err != nil {
		return err
	}
	t.next = id + 1
	return nil
}

// poll writes the events committed since the last poll.
func (t *auditTail) poll(ctx context.Context) error {
	events, err := t.store.AuditFrom(ctx, t.next, 1000)
	if err != nil {
		return err
	}
	var highest int64
	for _, e := range events {
		highest = e.ID
		if t.written[e.ID] {
			continue
		}
		if _, err := t.w.Write(JSON(e)); err != nil {
			return fmt.Errorf("writing the audit log: %w", err)
		}
		t.written[e.ID] = true
		delete(t.gaps, e.ID)
	}
	now := t.now()
	for t.next <= highest {
		if t.written[t.next] {
			delete(t.written, t.next)
			t.next++
			continue
		}
		first, ok := t.gaps[t.next]
		if !ok {
			t.gaps[t.next] = now
			break
		}
		if now.Sub(first) < t.gapWait {
			break
		}
		delete(t.gaps, t.next) // a transaction that took this id rolled back
		t.next++
	}
	return nil
}

// run polls until ctx ends, then once more so events written just before
// shutdown are not lost.
func (t *auditTail) run(ctx context.Context) {
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := t.poll(context.WithoutCancel(ctx)); err != nil {
				t.log.Error("audit log stream", "err", err)
			}
			return
		case <-tick.C:
			if err := t.poll(ctx); err != nil && ctx.Err() == nil {
				t.log.Error("audit log stream", "err", err)
			}
		}
	}
}

// openAuditLog opens --audit-log's destination: "stdout", or a file
// appended to (created 0600, as the audit log names people and addresses).
func openAuditLog(dest string, stdout io.Writer) (io.Writer, func() error, error) {
	if dest == "stdout" || dest == "-" {
		return stdout, func() error { return nil }, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, nil, fmt.Errorf("cannot open the audit log %s: %v", dest, pe.Err)
		}
		return nil, nil, fmt.Errorf("cannot open the audit log %s: %w", dest, err)
	}
	return f, f.Close, nil
}

// Start streams every new audit event to dest (--audit-log) until
// the returned stop is called; stop writes what is left and closes dest.
func Start(ctx context.Context, dest string, store *db.Store, log *slog.Logger) (stop func(), err error) {
	w, closeLog, err := openAuditLog(dest, os.Stdout)
	if err != nil {
		return nil, err
	}
	tail := newAuditTail(store, w, log)
	if err := tail.start(ctx); err != nil {
		closeLog()
		return nil, err
	}
	tailCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); tail.run(tailCtx) }()
	log.Info("streaming the audit log", "to", dest)
	return func() {
		cancel()
		<-done
		if err := closeLog(); err != nil {
			log.Error("closing the audit log", "err", err)
		}
	}, nil
}
