package mailer

import (
	"context"
	"gatehouse/internal/smtptest"
	"net"
	"strings"
	"testing"
)

const testMailFrom = "Gatehouse <gatehouse@example.com>"

func TestSMTPURLAndTLSPolicy(t *testing.T) {
	for _, tc := range []struct {
		raw        string
		want       SMTP
		wantErr    string
		requireTLS bool
	}{
		{raw: "smtp://mail.corp.example", want: SMTP{Host: "mail.corp.example", Port: 587, RequireTLS: true}},
		{raw: "smtp://u%40corp:p%3Ass@mail.corp.example:2525", want: SMTP{Host: "mail.corp.example", Port: 2525, RequireTLS: true, User: "u@corp", Pass: "p:ss"}},
		{raw: "smtps://mail.corp.example", want: SMTP{Host: "mail.corp.example", Port: 465, ImplicitTLS: true}},
		{raw: "smtp://127.0.0.1:1025", want: SMTP{Host: "127.0.0.1", Port: 1025}},
		{raw: "smtp://localhost:25", want: SMTP{Host: "localhost", Port: 25}},
		{raw: "smtp://[::1]:25", want: SMTP{Host: "::1", Port: 25}},
		{raw: "http://mail.corp.example", wantErr: "must start with smtp://"},
		{raw: "smtp://", wantErr: "no host"},
		{raw: "smtp://host:99999", wantErr: "invalid port"},
		{raw: "smtp://host/x", wantErr: "no path"},
	} {
		got, err := ParseSMTPURL(tc.raw)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err %v, want %q", tc.raw, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.raw, got, err, tc.want)
		}
	}
	if s, _ := ParseSMTPURL("smtp://u:secret@mail.corp.example"); strings.Contains(s.String(), "secret") {
		t.Errorf("String shows the password: %s", s)
	}

	// A server that offers no STARTTLS gets nothing when TLS is required.
	smtp := smtptest.Start(t)
	host, port, _ := net.SplitHostPort(smtp.Addr)
	s, _ := ParseSMTPURL("smtp://" + net.JoinHostPort(host, port))
	s.RequireTLS = true // as for any host that is not loopback
	err := (&SMTPSender{Server: s, From: testMailFrom}).Send(context.Background(), Message{To: "a@example.com", Subject: "x", Text: "x"})
	if err == nil || len(smtp.Messages()) != 0 {
		t.Errorf("sent without TLS: err %v, %d messages", err, len(smtp.Messages()))
	}
}

func TestSMTPCredentials(t *testing.T) {
	smtp := smtptest.Start(t)
	smtp.User, smtp.Pass = "gatehouse", "s3cret"
	s, err := ParseSMTPURL(smtp.URL())
	if err != nil {
		t.Fatal(err)
	}
	send := func(s SMTP) error {
		return (&SMTPSender{Server: s, From: testMailFrom}).Send(context.Background(), Message{To: "a@example.com", Subject: "hi", Text: "hi", HTML: "<p>hi</p>"})
	}
	if err := send(s); err != nil || len(smtp.Messages()) != 1 {
		t.Fatalf("with credentials: %v, %d messages", err, len(smtp.Messages()))
	}
	s.Pass = "wrong"
	if err := send(s); err == nil || len(smtp.Messages()) != 1 {
		t.Errorf("wrong password: %v", err)
	}
}
