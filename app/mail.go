package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"net/mail"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"gatehouse/components"
	"gatehouse/db"
)

// productName names Gatehouse in the mail it sends.
const productName = "Gatehouse"

// How long emailed links stay valid.
const (
	resetTokenTTL  = 30 * time.Minute
	verifyTokenTTL = 24 * time.Hour
)

// Outbox worker settings: a message is leased to one worker for
// mailLease, a send gives up after mailSendTimeout (well inside the
// lease, so no other worker takes a message that is still being sent),
// and failures are retried with exponential backoff from mailRetryBase up
// to mailRetryMax between attempts, mailMaxAttempts times in all (about
// 14 hours) before the message is marked failed.
const (
	mailLease       = 5 * time.Minute
	mailSendTimeout = 60 * time.Second
	mailRetryBase   = 30 * time.Second
	mailRetryMax    = time.Hour
	mailMaxAttempts = 20
	mailBatch       = 10
	// mailKeep is how long finished outbox rows are kept for operators.
	mailKeep = 7 * 24 * time.Hour
)

// smtpSettings is a parsed --smtp-url.
type smtpSettings struct {
	Host string
	Port int
	// ImplicitTLS is smtps://: TLS from the first byte.
	ImplicitTLS bool
	// RequireTLS refuses to send unless the server offers STARTTLS; it is
	// off only for a server on the loopback interface.
	RequireTLS bool
	User, Pass string
}

// String describes the server without its credentials, for logs.
func (s smtpSettings) String() string {
	scheme := "smtp"
	if s.ImplicitTLS {
		scheme = "smtps"
	}
	return scheme + "://" + net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// parseSMTPURL reads smtp://[user[:pass]@]host[:port] (STARTTLS, port
// 587 by default; required unless the host is loopback) or smtps://…
// (implicit TLS, port 465 by default).
func parseSMTPURL(raw string) (smtpSettings, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return smtpSettings{}, errors.New("--smtp-url is not a valid URL (smtp://user:pass@host:587 or smtps://user:pass@host:465)")
	}
	var s smtpSettings
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		s.Port = 587
	case "smtps":
		s.Port, s.ImplicitTLS = 465, true
	default:
		return s, errors.New("--smtp-url must start with smtp:// (STARTTLS) or smtps:// (TLS)")
	}
	s.Host = u.Hostname()
	if s.Host == "" {
		return s, errors.New("--smtp-url names no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return s, fmt.Errorf("--smtp-url has an invalid port %q", p)
		}
		s.Port = n
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return s, errors.New("--smtp-url takes no path or query: smtp://user:pass@host:port")
	}
	if u.User != nil {
		s.User = u.User.Username()
		s.Pass, _ = u.User.Password()
	}
	s.RequireTLS = !s.ImplicitTLS && !isLoopbackHost(s.Host)
	return s, nil
}

// isLoopbackHost reports whether host is localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseMailFrom checks --mail-from: an address, optionally with a name.
func parseMailFrom(raw string) (string, error) {
	if strings.TrimSpace(raw) == "" {
		return "", errors.New("--mail-from is required with --smtp-url (e.g. \"Gatehouse <gatehouse@corp.example>\")")
	}
	a, err := mail.ParseAddress(raw)
	if err != nil {
		return "", fmt.Errorf("--mail-from %q is not an email address", raw)
	}
	return a.String(), nil
}

// outgoingMail is one rendered message to one address.
type outgoingMail struct {
	To, Subject, Text, HTML string
}

// mailSender delivers one message, or says why it could not.
type mailSender interface {
	Send(ctx context.Context, m outgoingMail) error
}

// smtpSender sends through the configured SMTP server, one connection per
// message (the outbox sends few, and a fresh connection has no state to
// go stale).
type smtpSender struct {
	server smtpSettings
	from   string
}

// Send delivers m; it fails (and sends nothing) rather than go without
// TLS when TLS is required.
func (s *smtpSender) Send(ctx context.Context, m outgoingMail) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("sender address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return permanentMailError{fmt.Errorf("recipient address: %w", err)}
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetGenHeader(gomail.Header("X-Auto-Response-Suppress"), "All")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	opts := []gomail.Option{gomail.WithPort(s.server.Port), gomail.WithTimeout(mailSendTimeout)}
	switch {
	case s.server.ImplicitTLS:
		opts = append(opts, gomail.WithSSL())
	case s.server.RequireTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if s.server.User != "" {
		// The strongest mechanism the server offers; over a plain loopback
		// connection (no TLS to protect it) go-mail discovers none, and
		// PLAIN is what local relays speak.
		auth := gomail.SMTPAuthAutoDiscover
		if !s.server.ImplicitTLS && !s.server.RequireTLS {
			auth = gomail.SMTPAuthPlain
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(s.server.User), gomail.WithPassword(s.server.Pass))
	}
	c, err := gomail.NewClient(s.server.Host, opts...)
	if err != nil {
		return err
	}
	err = c.DialAndSendWithContext(ctx, msg)
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() >= 500 && se.ErrorCode() < 600 {
		return permanentMailError{err}
	}
	return err
}

// permanentMailError is a failure that retrying cannot fix (the server
// refused the recipient with a 5xx code): the message is marked failed.
type permanentMailError struct{ error }

func (e permanentMailError) Unwrap() error { return e.error }

// mailer drains the outbox: each server runs one, and with several
// instances on one database each message is claimed, and so sent, once.
type mailer struct {
	a      *App
	sender mailSender
	owner  string
	// server describes the SMTP server (no credentials), for the log.
	server string
	kick   chan struct{}
	// poll is how often the outbox is checked for messages other
	// processes queued or retries that came due.
	poll time.Duration
}

func newMailer(a *App, sender mailSender) *mailer {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &mailer{a: a, sender: sender, owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b)),
		kick: make(chan struct{}, 1), poll: a.cfg.MailPoll}
}

// kickMail tells this server's outbox worker that a message was queued.
func (a *App) kickMail() {
	if a.mail == nil {
		return
	}
	select {
	case a.mail.kick <- struct{}{}:
	default:
	}
}

// run sends queued mail until ctx ends: at once when kicked, otherwise
// every poll interval; it also sweeps expired links and old outbox rows.
func (m *mailer) run(ctx context.Context) {
	poll := m.poll
	if poll <= 0 {
		poll = 5 * time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	lastSweep := time.Time{}
	for {
		m.drain(ctx)
		if time.Since(lastSweep) > time.Hour {
			lastSweep = time.Now()
			if err := m.a.store.SweepMail(ctx, mailKeep); err != nil && ctx.Err() == nil {
				m.a.log.Warn("sweeping the mail outbox failed", "err", err)
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

// drain sends every message that is due, batch by batch.
func (m *mailer) drain(ctx context.Context) {
	for ctx.Err() == nil {
		msgs, err := m.a.store.ClaimMail(ctx, m.owner, mailLease, mailBatch)
		if err != nil {
			if ctx.Err() == nil {
				m.a.log.Warn("reading the mail outbox failed", "err", err)
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
func (m *mailer) deliver(ctx context.Context, msg db.OutboxMessage) {
	log := m.a.log.With("mail_id", msg.ID, "kind", msg.Kind, "attempt", msg.Attempts)
	out, skip, err := m.a.composeMail(ctx, msg)
	if err == nil && skip != "" {
		m.a.metrics.mailHandled(msg.Kind, db.MailSkipped)
		if _, err := m.a.store.FinishMail(ctx, msg.ID, m.owner, db.MailSkipped, skip); err != nil {
			log.Warn("recording a skipped mail failed", "err", err)
		}
		return
	}
	if err == nil {
		sendCtx, cancel := context.WithTimeout(ctx, mailSendTimeout)
		err = m.sender.Send(sendCtx, out)
		cancel()
		if err == nil {
			// Record the send even when the server is shutting down right
			// now: otherwise the message would go out again.
			m.a.metrics.mailHandled(msg.Kind, db.MailSent)
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if ok, ferr := m.a.store.FinishMail(bctx, msg.ID, m.owner, db.MailSent, ""); ferr != nil {
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
	var perm permanentMailError
	if errors.As(err, &perm) || msg.Attempts >= mailMaxAttempts {
		log.Error("giving up on a mail", "to", msg.To, "err", err)
		m.a.metrics.mailHandled(msg.Kind, db.MailFailed)
		if _, ferr := m.a.store.FinishMail(ctx, msg.ID, m.owner, db.MailFailed, err.Error()); ferr != nil {
			log.Warn("recording a failed mail failed", "err", ferr)
		}
		_ = m.a.store.Audit(ctx, db.Actor{}, db.Event{Action: db.ActionMailFailed, Target: msg.To,
			Detail: map[string]any{"kind": msg.Kind, "attempts": msg.Attempts, "error": err.Error()}})
		return
	}
	m.a.metrics.mailHandled(msg.Kind, "retry")
	next := m.a.now().Add(retryDelay(msg.Attempts))
	log.Warn("sending a mail failed; it will be retried", "err", err, "retry_at", next.Format(time.RFC3339))
	if rerr := m.a.store.RetryMail(ctx, msg.ID, m.owner, next, err.Error()); rerr != nil {
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
	return d - time.Duration(mathrand.Int64N(int64(d/10)+1))
}

// composeMail renders a queued message. It creates the link's token now,
// so that a secret never rests in the outbox. skip, when not empty, says
// why there is nothing to send (an unknown address asked for a reset, the
// request was decided already, …).
func (a *App) composeMail(ctx context.Context, msg db.OutboxMessage) (out outgoingMail, skip string, err error) {
	base := a.cfg.baseURL()
	m := components.Mail{Product: productName, BaseURL: base}
	switch msg.Kind {
	case db.MailPasswordReset:
		u, err := a.store.UserByEmail(ctx, msg.To)
		switch {
		case errors.Is(err, db.ErrNotFound):
			return out, "no account has this address", nil
		case err != nil:
			return out, "", err
		case !u.IsActive:
			return out, "the account is deactivated", nil
		case !a.cfg.PasswordLogin && !u.IsAdmin:
			return out, "password sign-in is for admins only", nil
		}
		// An unconfirmed sign-up gets a reset link too (not the confirmation
		// link): whoever signed up knows its password, and the owner of the
		// address must be able to take the account over with their own.
		token, err := a.store.NewMailToken(ctx, u.ID, db.TokenReset, resetTokenTTL)
		if err != nil {
			return out, "", err
		}
		m.Subject = "Reset your " + productName + " password"
		m.Paragraphs = []string{
			"Hello " + u.DisplayName() + ",",
			"someone, hopefully you, asked to reset the password of your " + productName + " account " + u.Email + ".",
		}
		m.ActionLabel, m.ActionURL = "Choose a new password", base+"/password/reset?token="+url.QueryEscape(token)
		m.After = []string{
			"The link works once, within 30 minutes. Choosing a new password logs you out on every device.",
			"If you did not ask for this, ignore this message: your password stays as it is.",
		}
	case db.MailSignupVerify:
		u, err := a.store.UserByID(ctx, msg.RefID)
		switch {
		case errors.Is(err, db.ErrNotFound):
			return out, "the account no longer exists", nil
		case err != nil:
			return out, "", err
		case !u.EmailPending:
			return out, "the address is confirmed already", nil
		case !u.IsActive:
			return out, "the account is deactivated", nil
		}
		return a.composeVerify(ctx, m, u)
	case db.MailSignupExists:
		u, err := a.store.UserByEmail(ctx, msg.To)
		switch {
		case errors.Is(err, db.ErrNotFound):
			return out, "no account has this address", nil
		case err != nil:
			return out, "", err
		case !u.IsActive:
			return out, "the account is deactivated", nil
		}
		m.Subject = "You already have a " + productName + " account"
		m.Paragraphs = []string{
			"Hello " + u.DisplayName() + ",",
			"someone, hopefully you, tried to create a " + productName + " account with " + u.Email + ", which already has one. No new account was created.",
		}
		m.ActionLabel, m.ActionURL = "Log in", base+"/login"
		m.After = []string{
			"Forgot your password? Ask for a new one at " + base + "/password/forgot",
			"If this was not you, ignore this message: nothing changed.",
		}
	case db.MailRequestCreated:
		req, err := a.store.AccessRequestByID(ctx, msg.RefID)
		switch {
		case errors.Is(err, db.ErrNotFound):
			return out, "the request no longer exists", nil
		case err != nil:
			return out, "", err
		case req.Status != db.RequestPending:
			return out, "the request was decided already", nil
		}
		who := req.UserEmail
		if req.UserName != "" {
			who = req.UserName + " (" + req.UserEmail + ")"
		}
		title := a.dashboardTitle(req.Dashboard)
		m.Subject = "Access request: " + firstNonEmpty(req.UserName, req.UserEmail) + " asks for " + title
		m.Paragraphs = []string{who + " asks for access to the dashboard " + title + "."}
		if req.Message != "" {
			m.Paragraphs = append(m.Paragraphs, "Their message:")
			m.Quote = req.Message
		}
		m.ActionLabel, m.ActionURL = "Review the request", base+"/admin/requests"
		m.After = []string{"You receive this because you can decide access requests for this dashboard."}
	case db.MailRequestDecided:
		req, err := a.store.AccessRequestByID(ctx, msg.RefID)
		switch {
		case errors.Is(err, db.ErrNotFound):
			return out, "the request no longer exists", nil
		case err != nil:
			return out, "", err
		case req.Status == db.RequestPending:
			return out, "the request is not decided", nil
		}
		title := a.dashboardTitle(req.Dashboard)
		m.Paragraphs = []string{"Hello " + firstNonEmpty(req.UserName, req.UserEmail) + ","}
		if req.Status == db.RequestApproved {
			m.Subject = "Access to " + title + " approved"
			line := "your request for access to the dashboard " + title + " was approved"
			if req.GroupName != "" {
				line += ": you are now a member of " + req.GroupName
			}
			m.Paragraphs = append(m.Paragraphs, line+".")
			m.ActionLabel, m.ActionURL = "Open "+title, base+"/dashboards/"+url.PathEscape(req.Dashboard)
		} else {
			m.Subject = "Access to " + title + " denied"
			m.Paragraphs = append(m.Paragraphs, "your request for access to the dashboard "+title+" was denied.")
		}
		if req.Note != "" {
			m.Paragraphs = append(m.Paragraphs, "Note from "+firstNonEmpty(req.DecidedBy, "the admin")+":")
			m.Quote = req.Note
		}
	default:
		return out, "", permanentMailError{fmt.Errorf("unknown mail kind %q", msg.Kind)}
	}
	return renderMail(ctx, msg.To, m)
}

// composeVerify renders the link that confirms a sign-up's address.
func (a *App) composeVerify(ctx context.Context, m components.Mail, u db.User) (outgoingMail, string, error) {
	token, err := a.store.NewMailToken(ctx, u.ID, db.TokenVerify, verifyTokenTTL)
	if err != nil {
		return outgoingMail{}, "", err
	}
	m.Subject = "Confirm your email for " + productName
	m.Paragraphs = []string{
		"Hello " + u.DisplayName() + ",",
		"to finish creating your " + productName + " account " + u.Email + ", confirm that this address is yours.",
	}
	m.ActionLabel, m.ActionURL = "Confirm my email", m.BaseURL+"/signup/confirm?token="+url.QueryEscape(token)
	m.After = []string{
		"The link is valid for 24 hours. If you did not sign up, ignore this message: the account stays unusable.",
	}
	return renderMail(ctx, u.Email, m)
}

// renderMail makes the plain-text and HTML parts of m for to.
func renderMail(ctx context.Context, to string, m components.Mail) (outgoingMail, string, error) {
	var html bytes.Buffer
	if err := components.MailHTML(m).Render(ctx, &html); err != nil {
		return outgoingMail{}, "", err
	}
	return outgoingMail{To: to, Subject: m.Subject, Text: m.Text(), HTML: html.String()}, "", nil
}

func (a *App) dashboardTitle(slug string) string {
	if d := a.registry.Get(slug); d != nil {
		return d.Title
	}
	return slug
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
