package dashboards

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/a-h/templ"
)

// TestRenderOnce: a memoized panel asks for its data once however many
// requests come at once, writes the same bytes every time, and a failed
// render is retried by the next request instead of being remembered.
func TestRenderOnce(t *testing.T) {
	var calls atomic.Int32
	fail := atomic.Bool{}
	fail.Store(true)
	data := renderOnce(func(context.Context, Query) (templ.Component, error) {
		calls.Add(1)
		if fail.Load() {
			return nil, errors.New("not yet")
		}
		return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
			_, err := io.WriteString(w, "<p>panel</p>")
			return err
		}), nil
	})
	ctx := context.Background()
	if _, err := data(ctx, Query{}); err == nil {
		t.Fatal("the failing render did not fail")
	}
	fail.Store(false)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := data(ctx, Query{})
			if err != nil {
				t.Error(err)
				return
			}
			var b bytes.Buffer
			if err := c.Render(ctx, &b); err != nil || b.String() != "<p>panel</p>" {
				t.Errorf("render: %q, %v", b.String(), err)
			}
			if html, ok := c.(Rendered); !ok || string(html) != "<p>panel</p>" {
				t.Errorf("the memoized panel is %T %q, not its Rendered bytes", c, html)
			}
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != 2 {
		t.Errorf("data was asked for %d times, want 2 (the failure, then once)", n)
	}
}
