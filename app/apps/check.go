package apps

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// State is whether an upstream answered.
type State struct {
	Up     bool
	Status int   // the upstream's HTTP status when it answered
	Err    error // why it is down
	Took   time.Duration
}

// String says the state in a few words: "up (200, 3ms)" or "down: …".
func (s State) String() string {
	if s.Up {
		return fmt.Sprintf("up (%d, %s)", s.Status, s.Took.Round(time.Millisecond))
	}
	return "down: " + s.Err.Error()
}

// Check asks upstream for its root page through rt and reports whether it
// answered within timeout. Any HTTP answer counts as up: an app may well
// answer 302 or 401 at its root.
func Check(ctx context.Context, rt http.RoundTripper, upstream string, timeout time.Duration) State {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, upstream, nil)
	if err != nil {
		return State{Err: err}
	}
	start := time.Now()
	res, err := rt.RoundTrip(req)
	took := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return State{Err: fmt.Errorf("no answer within %s", timeout), Took: took}
		}
		return State{Err: err, Took: took}
	}
	res.Body.Close()
	return State{Up: true, Status: res.StatusCode, Took: took}
}
