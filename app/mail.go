package app

import (
	"gatehouse/app/mailer"
)

// newMailWorker returns the outbox worker that sends through sender,
// composing each message with this server's base URL, sign-in rules and
// dashboard titles.
func (a *App) newMailWorker(sender mailer.Sender, server string) *mailer.Worker {
	c := &mailer.Composer{Store: a.store, BaseURL: func() string { return a.cfg.PublicURL() }, PasswordLogin: a.cfg.PasswordLogin, Title: a.dashboardTitle}
	return mailer.NewWorker(mailer.WorkerConfig{Store: a.store, Sender: sender, Compose: c.Compose, Log: a.log,
		Now: a.now, Handled: func(kind, result string) { a.metrics.mailHandled(kind, result) }, Poll: a.cfg.MailPoll, Server: server})
}

// dashboardTitle names a dashboard by its slug (the slug itself when no
// registered dashboard has it).
func (a *App) dashboardTitle(slug string) string {
	if d := a.registry.Get(slug); d != nil {
		return d.Title
	}
	return slug
}
