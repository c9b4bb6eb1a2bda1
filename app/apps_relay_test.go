package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestAppsWebSocketRelaysMessagesOfEverySize: messages from a byte to
// 32,000 bytes go through an app's proxied WebSocket both ways
// intact (the relay waits with a small buffer and borrows a larger one
// while data streams; app/apps/wscopy.go).
func TestAppsWebSocketRelaysMessagesOfEverySize(t *testing.T) {
	e := newAppsEnv(t)
	e.member(t, "ann@example.com")
	c, _, _ := e.signIn(t, "ann@example.com", "/")
	ws, _, err := e.wsDial(t, c, "/ws", e.appURL("sales", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Up to the echo upstream's read limit (32 KiB).
	for _, size := range []int{1, 125, 126, 2047, 2048, 2049, 4096, 20000, 32000} {
		msg := make([]byte, size)
		_, _ = rand.Read(msg)
		if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
			t.Fatalf("writing %d bytes: %v", size, err)
		}
		_, got, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("reading the echo of %d bytes: %v", size, err)
		}
		if !bytes.Equal(got, append([]byte("echo "), msg...)) {
			t.Fatalf("the echo of %d bytes came back as %d bytes, not the same", size, len(got))
		}
	}
}
