// Package mailer sends Gatehouse's mail. Handlers only queue a row in the
// outbox (db.QueueMail) and Kick the Worker; the Worker claims due rows (one
// worker per message across every instance), has the Composer render each
// one, creating the emailed link's token only then so that no secret rests
// in the outbox, and delivers it through SMTP with retries and backoff. It
// knows the store and the mail templates, nothing of HTTP.
package mailer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Product names Gatehouse in the mail it sends.
const Product = "Gatehouse"

// SendTimeout bounds one message's delivery.
const SendTimeout = 60 * time.Second

// SMTP is a parsed --smtp-url.
type SMTP struct {
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
func (s SMTP) String() string {
	scheme := "smtp"
	if s.ImplicitTLS {
		scheme = "smtps"
	}
	return scheme + "://" + net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// ParseSMTPURL reads smtp://[user[:pass]@]host[:port] (STARTTLS, port
// 587 by default; required unless the host is loopback) or smtps://…
// (implicit TLS, port 465 by default).
func ParseSMTPURL(raw string) (SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return SMTP{}, errors.New("--smtp-url is not a valid URL (smtp://user:pass@host:587 or smtps://user:pass@host:465)")
	}
	var s SMTP
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

// ParseFrom checks --mail-from: an address, optionally with a name.
func ParseFrom(raw string) (string, error) {
	if strings.TrimSpace(raw) == "" {
		return "", errors.New("--mail-from is required with --smtp-url (e.g. \"Gatehouse <gatehouse@corp.example>\")")
	}
	a, err := mail.ParseAddress(raw)
	if err != nil {
		return "", fmt.Errorf("--mail-from %q is not an email address", raw)
	}
	return a.String(), nil
}

// Message is one rendered message to one address.
type Message struct {
	To, Subject, Text, HTML string
}

// Sender delivers one message, or says why it could not.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SMTPSender sends through the configured SMTP server, one connection per
// message (the outbox sends few, and a fresh connection has no state to
// go stale).
type SMTPSender struct {
	Server SMTP
	From   string
}

// Send delivers m; it fails (and sends nothing) rather than go without
// TLS when TLS is required.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.From); err != nil {
		return fmt.Errorf("sender address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return PermanentError{fmt.Errorf("recipient address: %w", err)}
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
	opts := []gomail.Option{gomail.WithPort(s.Server.Port), gomail.WithTimeout(SendTimeout)}
	switch {
	case s.Server.ImplicitTLS:
		opts = append(opts, gomail.WithSSL())
	case s.Server.RequireTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if s.Server.User != "" {
		// The strongest mechanism the server offers; over a plain loopback
		// connection (no TLS to protect it) go-mail discovers none, and
		// PLAIN is what local relays speak.
		auth := gomail.SMTPAuthAutoDiscover
		if !s.Server.ImplicitTLS && !s.Server.RequireTLS {
			auth = gomail.SMTPAuthPlain
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(s.Server.User), gomail.WithPassword(s.Server.Pass))
	}
	c, err := gomail.NewClient(s.Server.Host, opts...)
	if err != nil {
		return err
	}
	err = c.DialAndSendWithContext(ctx, msg)
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() >= 500 && se.ErrorCode() < 600 {
		return PermanentError{err}
	}
	return err
}

// PermanentError is a failure that retrying cannot fix (the server
// refused the recipient with a 5xx code): the message is marked failed.
type PermanentError struct{ error }

func (e PermanentError) Unwrap() error { return e.error }
