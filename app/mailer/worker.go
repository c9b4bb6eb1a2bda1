package mailer

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"gatehouse/db"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"
)

// Outbox worker settings: a message is leased to one worker for
// mailLease, a send gives up after SendTimeout (well inside the
// lease, so no other worker takes a message that is still being sent),
// and failures are retried with exponential backoff from mailRetryBase up
// to mailRetryMax between attempts, mailMaxAttempts times in all (about
// 14 hours) before the message is marked failed.
const (
	mailLease       = 5 * time.Minute
	mailRetryBase   = 30 * time.Second
	mailRetryMax    = time.Hour
	mailMaxAttempts = 20
	mailBatch       = 10
	// mailKeep is how long finished outbox rows are kept for operators.
	mailKeep = 7 * 24 * time.Hour
)

// Worker drains the outbox: each server runs one, and with several
// instances on one database each message is claimed, and so sent, once. A
// nil *Worker (mail off) ignores Kick.
type Worker struct {
	store   *db.Store
	sender  Sender
	compose func(context.Context, db.OutboxMessage) (Message, string, error)
	log     *slog.Logger
	now     func() time.Time
	handled func(kind, result string)
	owner   string
	kick    chan struct{}
	poll    time.Duration
	// Server describes the SMTP server (no credentials), for the log.
	Server string
}

// WorkerConfig is what a Worker needs. Compose renders one claimed
// message, or says why there is nothing to send (see Composer.Compose).
type WorkerConfig struct {
	Store   *db.Store
	Sender  Sender
	Compose func(context.Context, db.OutboxMessage) (Message, string, error)
	Log     *slog.Logger
	// Now is the clock for retry times (the store's).
	Now func() time.Time
	// Handled, when set, counts each outcome (sent, skipped, failed,
	// retry) by message kind, for metrics.
	Handled func(kind, result string)
	// Poll is how often the outbox is checked for messages other processes
	// queued or retries that came due (0: 5 s).
	Poll time.Duration
	// Server names the SMTP server for the log.
	Server string
}

// NewWorker returns a worker that runs once Run is called.
func NewWorker(cfg WorkerConfig) *Worker {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = crand.Read(b)
	handled := cfg.Handled
	if handled == nil {
		handled = func(string, string) {}
	}
	return &Worker{store: cfg.Store, sender: cfg.Sender, compose: cfg.Compose, log: cfg.Log, now: cfg.Now, handled: handled,
		owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b)),
		kick:  make(chan struct{}, 1), poll: cfg.Poll, Server: cfg.Server}
}

// Kick tells the worker that a message was queued, so it sends it now
// rather than at the next poll.
func (m *Worker) Kick() {
	if m == nil {
		return
	}
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Run sends queued mail until ctx ends: at once when kicked, otherwise
// every poll interval; it also sweeps expired links and old outbox rows.
func (m *Worker) Run(ctx context.Context) {
	poll := m.poll
	if poll <= 0 {
		poll = 5 * time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	lastSweep := time.Time{}
	for {
		m.Drain(ctx)
		if time.Since(lastSweep) > time.Hour {
			lastSweep = time.Now()
			if err := m.store.SweepMail(ctx, mailKeep); err != nil && ctx.Err() == nil {
				m.log.Warn("sweeping the mail outbox failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.kick:
		}
	}
}

// Drain sends every message that is due, batch by batch, and returns
// when none is left (Run calls it; tests call it to send at once).
func (m *Worker) Drain(ctx context.Context) {
	for ctx.Err() == nil {
		msgs, err := m.store.ClaimMail(ctx, m.owner, mailLease, mailBatch)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("reading the mail outbox failed", "err", err)
			}
			return
		}
		if len(msgs) == 0 {
			return
		}
		for _, msg := range msgs {
			m.deliver(ctx, msg)
		}
	}
}

// deliver renders and sends one claimed message and records the outcome.
func (m *Worker) deliver(ctx context.Context, msg db.OutboxMessage) {
	log := m.log.With("mail_id", msg.ID, "kind", msg.Kind, "attempt", msg.Attempts)
	out, skip, err := m.compose(ctx, msg)
	if err == nil && skip != "" {
		m.handled(msg.Kind, db.MailSkipped)
		if _, err := m.store.FinishMail(ctx, msg.ID, m.owner, db.MailSkipped, skip); err != nil {
			log.Warn("recording a skipped mail failed", "err", err)
		}
		return
	}
	if err == nil {
		sendCtx, cancel := context.WithTimeout(ctx, SendTimeout)
		err = m.sender.Send(sendCtx, out)
		cancel()
		if err == nil {
			// Record the send even when the server is shutting down right
			// now: otherwise the message would go out again.
			m.handled(msg.Kind, db.MailSent)
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if ok, ferr := m.store.FinishMail(bctx, msg.ID, m.owner, db.MailSent, ""); ferr != nil {
				log.Warn("recording a sent mail failed; it may be sent again", "err", ferr)
			} else if !ok {
				log.Warn("a mail was sent after its lease ended; another worker may send it again")
			}
			return
		}
	}
	if ctx.Err() != nil {
		// Shutting down: the lease runs out and a worker tries again.
		return
	}
	var perm PermanentError
	if errors.As(err, &perm) || msg.Attempts >= mailMaxAttempts {
		log.Error("giving up on a mail", "to", msg.To, "err", err)
		m.handled(msg.Kind, db.MailFailed)
		if _, ferr := m.store.FinishMail(ctx, msg.ID, m.owner, db.MailFailed, err.Error()); ferr != nil {
			log.Warn("recording a failed mail failed", "err", ferr)
		}
		_ = m.store.Audit(ctx, db.Actor{}, db.Event{Action: db.ActionMailFailed, Target: msg.To,
			Detail: map[string]any{"kind": msg.Kind, "attempts": msg.Attempts, "error": err.Error()}})
		return
	}
	m.handled(msg.Kind, "retry")
	next := m.now().Add(retryDelay(msg.Attempts))
	log.Warn("sending a mail failed; it will be retried", "err", err, "retry_at", next.Format(time.RFC3339))
	if rerr := m.store.RetryMail(ctx, msg.ID, m.owner, next, err.Error()); rerr != nil {
		log.Warn("recording a mail retry failed; it is retried when its lease ends", "err", rerr)
	}
}

// retryDelay is the wait before the next attempt after attempts failed
// ones: mailRetryBase doubling up to mailRetryMax, less up to 10% jitter
// so that a fleet does not retry in lock-step.
func retryDelay(attempts int) time.Duration {
	d := mailRetryBase
	for i := 1; i < attempts && d < mailRetryMax; i++ {
		d *= 2
	}
	d = min(d, mailRetryMax)
	return d - time.Duration(rand.Int64N(int64(d/10)+1))
}
