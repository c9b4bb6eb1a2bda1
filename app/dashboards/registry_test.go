package dashboards

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/a-h/templ"
)

// TestRegistryReadsWhileRegistering: lookups run without a lock while
// dashboards are registered; each sees a whole set, a bad dashboard is
// refused and those registered before it stay, and All keeps the order.
func TestRegistryReadsWhileRegistering(t *testing.T) {
	data := func(context.Context, Query) (templ.Component, error) { return nil, nil }
	dash := func(slug string) *Dashboard {
		return &Dashboard{Slug: slug, Title: slug, Panels: []*Panel{{ID: "p", Data: data}}}
	}
	r := NewRegistry()
	r.MustRegister(dash("a"))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if r.Get("a") == nil {
					t.Error("a registered dashboard went missing")
					return
				}
				if all := r.All(); len(all) == 0 || all[0].Slug != "a" {
					t.Errorf("All: %v", all)
					return
				}
			}
		}()
	}
	for _, s := range []string{"b", "c", "d"} {
		if err := r.Register(dash(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Register(dash("e"), dash("a"), dash("f")); err == nil {
		t.Error("a second \"a\" was registered")
	}
	close(stop)
	wg.Wait()
	var got []string
	for _, d := range r.All() {
		got = append(got, d.Slug)
	}
	if want := "a b c d e"; strings.Join(got, " ") != want {
		t.Errorf("registered %q, want %q (e before the refused duplicate stays, f after it is not added)", strings.Join(got, " "), want)
	}
	if r.Get("e") == nil || r.Get("f") != nil || r.Get("nope") != nil {
		t.Errorf("Get: e %v, f %v, nope %v", r.Get("e"), r.Get("f"), r.Get("nope"))
	}
}
