package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"gatehouse/app"
	"gatehouse/app/mailer"
	"gatehouse/components"
	"gatehouse/db"
)

// mailFlags adds --smtp-url and --mail-from to a command.
func mailFlags(fs *flag.FlagSet, cfg *app.Config) {
	fs.StringVar(&cfg.SMTPURL, "smtp-url", "", "SMTP server for password resets, sign-up confirmation and access request notices: smtp://user:pass@host:587 (STARTTLS, required unless the host is loopback) or smtps://user:pass@host:465; prefer the env var GATEHOUSE_SMTP_URL for the password (empty: no mail)")
	fs.StringVar(&cfg.MailFrom, "mail-from", "", "sender of Gatehouse's mail, e.g. \"Gatehouse <gatehouse@corp.example>\" (required with --smtp-url)")
}

// checkMailFlags turns a bad --smtp-url or --mail-from into a usage error.
func checkMailFlags(cfg *app.Config) error {
	if cfg.SMTPURL == "" {
		if cfg.MailFrom != "" {
			return usageError{"--mail-from needs --smtp-url"}
		}
		return nil
	}
	if _, err := mailer.ParseSMTPURL(cfg.SMTPURL); err != nil {
		return usageError{err.Error()}
	}
	if _, err := mailer.ParseFrom(cfg.MailFrom); err != nil {
		return usageError{err.Error()}
	}
	return nil
}

// cmdMail runs `gatehouse mail test ADDRESS`: one message, sent at once
// (not through the outbox), so that a wrong setting shows as an error here.
func cmdMail(ctx context.Context, c *CLI, args []string) error {
	fs := c.flags("mail", "test ADDRESS [--smtp-url URL] [--mail-from ADDR] [--base-url URL]",
		"Send a test message to ADDRESS through the SMTP server and report the server's answer.")
	cfg := app.DefaultConfig()
	mailFlags(fs, &cfg)
	fs.StringVar(&cfg.BaseURL, "base-url", "", "public URL of the server, named in the message")
	pos, err := c.parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	if pos[0] != "test" {
		return usageError{fmt.Sprintf("unknown subcommand %q", pos[0])}
	}
	if cfg.SMTPURL == "" {
		return usageError{"--smtp-url (or GATEHOUSE_SMTP_URL) is required"}
	}
	if err := checkMailFlags(&cfg); err != nil {
		return err
	}
	to, err := db.NormalizeEmail(pos[1])
	if err != nil {
		return usageError{err.Error()}
	}
	server, _ := mailer.ParseSMTPURL(cfg.SMTPURL)
	from, _ := mailer.ParseFrom(cfg.MailFrom)
	base := cfg.PublicURL()
	out, err := mailer.Render(ctx, to, components.Mail{Product: mailer.Product, BaseURL: base,
		Subject: mailer.Product + " test message",
		Paragraphs: []string{
			"This is a test message from " + mailer.Product + " at " + base + ".",
			"Mail works: password resets, sign-up confirmations and access request notices will reach people.",
		}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, mailer.SendTimeout)
	defer cancel()
	if err := (&mailer.SMTPSender{Server: server, From: from}).Send(ctx, out); err != nil {
		return fmt.Errorf("sending through %s failed: %s", server, strings.TrimSpace(err.Error()))
	}
	fmt.Fprintf(c.Stdout, "sent a test message to %s through %s\n", to, server)
	return nil
}
