package mailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"gatehouse/components"
	"gatehouse/db"
	"net/url"
	"time"
)

// How long emailed links stay valid.
const (
	resetTokenTTL  = 30 * time.Minute
	verifyTokenTTL = 24 * time.Hour
)

// Composer renders queued messages into mail.
type Composer struct {
	Store *db.Store
	// BaseURL returns what starts every link (no trailing slash); it is
	// asked per message, since a server on port 0 learns its port late.
	BaseURL func() string
	// PasswordLogin false: only admins get password reset links.
	PasswordLogin bool
	// Title names a dashboard by its slug.
	Title func(slug string) string
}

// Compose renders a queued message. It creates the link's token now,
// so that a secret never rests in the outbox. skip, when not empty, says
// why there is nothing to send (an unknown address asked for a reset, the
// request was decided already, …).
func (a *Composer) Compose(ctx context.Context, msg db.OutboxMessage) (out Message, skip string, err error) {
	base := a.BaseURL()
	m := components.Mail{Product: Product, BaseURL: base}
	switch msg.Kind {
	case db.MailPasswordReset:
		u, err := a.Store.UserByEmail(ctx, msg.To)
		switch {
		case errors.Is(err, db.ErrNotFound):
			return out, "no account has this address", nil
		case err != nil:
			return out, "", err
		case !u.IsActive:
			return out, "the account is deactivated", nil
		case !a.PasswordLogin && !u.IsAdmin:
			return out, "password sign-in is for admins only", nil
		}
		// An unconfirmed sign-up gets a reset link too (not the confirmation
		// link): whoever signed up knows its password, and the owner of the
		// address must be able to take the account over with their own.
		token, err := a.Store.NewMailToken(ctx, u.ID, db.TokenReset, resetTokenTTL)
		if err != nil {
			return out, "", err
		}
		m.Subject = "Reset your " + Product + " password"
		m.Paragraphs = []string{
			"Hello " + u.DisplayName() + ",",
			"someone, hopefully you, asked to reset the password of your " + Product + " account " + u.Email + ".",
		}
		m.ActionLabel, m.ActionURL = "Choose a new password", base+"/password/reset?token="+url.QueryEscape(token)
		m.After = []string{
			"The link works once, within 30 minutes. Choosing a new password logs you out on every device.",
			"If you did not ask for this, ignore this message: your password stays as it is.",
		}
	case db.MailSignupVerify:
		u, err := a.Store.UserByID(ctx, msg.RefID)
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
		u, err := a.Store.UserByEmail(ctx, msg.To)
		switch {
		case errors.Is(err, db.ErrNotFound):
			return out, "no account has this address", nil
		case err != nil:
			return out, "", err
		case !u.IsActive:
			return out, "the account is deactivated", nil
		}
		m.Subject = "You already have a " + Product + " account"
		m.Paragraphs = []string{
			"Hello " + u.DisplayName() + ",",
			"someone, hopefully you, tried to create a " + Product + " account with " + u.Email + ", which already has one. No new account was created.",
		}
		m.ActionLabel, m.ActionURL = "Log in", base+"/login"
		m.After = []string{
			"Forgot your password? Ask for a new one at " + base + "/password/forgot",
			"If this was not you, ignore this message: nothing changed.",
		}
	case db.MailRequestCreated:
		req, err := a.Store.AccessRequestByID(ctx, msg.RefID)
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
		title := a.Title(req.Dashboard)
		m.Subject = "Access request: " + firstNonEmpty(req.UserName, req.UserEmail) + " asks for " + title
		m.Paragraphs = []string{who + " asks for access to the dashboard " + title + "."}
		if req.Message != "" {
			m.Paragraphs = append(m.Paragraphs, "Their message:")
			m.Quote = req.Message
		}
		m.ActionLabel, m.ActionURL = "Review the request", base+"/admin/requests"
		m.After = []string{"You receive this because you can decide access requests for this dashboard."}
	case db.MailRequestDecided:
		req, err := a.Store.AccessRequestByID(ctx, msg.RefID)
		switch {
		case errors.Is(err, db.ErrNotFound):
			return out, "the request no longer exists", nil
		case err != nil:
			return out, "", err
		case req.Status == db.RequestPending:
			return out, "the request is not decided", nil
		}
		title := a.Title(req.Dashboard)
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
		return out, "", PermanentError{fmt.Errorf("unknown mail kind %q", msg.Kind)}
	}
	return render(ctx, msg.To, m)
}

// composeVerify renders the link that confirms a sign-up's address.
func (a *Composer) composeVerify(ctx context.Context, m components.Mail, u db.User) (Message, string, error) {
	token, err := a.Store.NewMailToken(ctx, u.ID, db.TokenVerify, verifyTokenTTL)
	if err != nil {
		return Message{}, "", err
	}
	m.Subject = "Confirm your email for " + Product
	m.Paragraphs = []string{
		"Hello " + u.DisplayName() + ",",
		"to finish creating your " + Product + " account " + u.Email + ", confirm that this address is yours.",
	}
	m.ActionLabel, m.ActionURL = "Confirm my email", m.BaseURL+"/signup/confirm?token="+url.QueryEscape(token)
	m.After = []string{
		"The link is valid for 24 hours. If you did not sign up, ignore this message: the account stays unusable.",
	}
	return render(ctx, u.Email, m)
}

// Render makes the plain-text and HTML parts of m for to.
func Render(ctx context.Context, to string, m components.Mail) (Message, error) {
	var html bytes.Buffer
	if err := components.MailHTML(m).Render(ctx, &html); err != nil {
		return Message{}, err
	}
	return Message{To: to, Subject: m.Subject, Text: m.Text(), HTML: html.String()}, nil
}

// render is Render for Compose: nothing skipped.
func render(ctx context.Context, to string, m components.Mail) (Message, string, error) {
	out, err := Render(ctx, to, m)
	return out, "", err
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
