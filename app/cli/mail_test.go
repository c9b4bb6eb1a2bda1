package cli

import (
	"gatehouse/internal/smtptest"
	"gatehouse/internal/testutil"
	"strings"
	"testing"
)

func TestMailTestCommand(t *testing.T) {
	smtp := smtptest.Start(t)
	e := newCLIEnv(t)
	out := e.ok("", "mail", "test", "ops@example.com", "--smtp-url", smtp.URL(), "--mail-from", testMailFrom, "--base-url", "https://gatehouse.corp.example")
	if !strings.Contains(out, "sent a test message to ops@example.com") {
		t.Errorf("output: %s", out)
	}
	msgs := smtp.To("ops@example.com")
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "https://gatehouse.corp.example") || msgs[0].HTML == "" {
		t.Fatalf("test message: %+v", msgs)
	}
	down := testutil.FreeAddr(t)
	e.fails(1, "sending through smtp://"+down+" failed", "", "mail", "test", "ops@example.com", "--smtp-url", "smtp://"+down, "--mail-from", testMailFrom)
	e.fails(2, "--mail-from is required", "", "mail", "test", "ops@example.com", "--smtp-url", smtp.URL())
	e.fails(2, "must start with smtp://", "", "mail", "test", "ops@example.com", "--smtp-url", "http://x", "--mail-from", testMailFrom)
	e.fails(2, "--smtp-url", "", "mail", "test", "ops@example.com")
	e.fails(2, "must start with smtp://", "", "serve", "--smtp-url", "ftp://x", "--mail-from", testMailFrom)
}
