package ops

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRequestLineIsSlogsLine: the hand-written request line is the one
// slog's TextHandler writes for the same record, byte for byte, and values
// slog would quote take slog's own path.
func TestRequestLineIsSlogsLine(t *testing.T) {
	at := []time.Time{
		time.Date(2026, 11, 23, 15, 49, 47, 128_000_000, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2026, 6, 30, 23, 59, 59, 999_999_999, time.FixedZone("CEST", 2*3600)),
	}
	lines := []RequestLine{
		{ID: "23fd93024c15923b", Method: "GET", Path: "/dashboards/finance/panels/burn-and-runway", IP: "127.0.0.1", Status: 200, Bytes: 1349, Duration: 17884 * time.Nanosecond},
		{ID: "0000000000000000", Method: "POST", Path: "/login", IP: "2001:db8::1", Status: 401, Bytes: 0, Duration: 35 * time.Millisecond},
		{ID: "ffffffffffffffff", Method: "HEAD", Path: "/", IP: "10.0.0.1", Status: 503, Bytes: 12, Duration: 2*time.Second + 5*time.Microsecond},
		{ID: "1", Method: "GET", Path: "/a%20b?c", IP: "::1", Status: 404, Bytes: 7, Duration: 0},
	}
	for _, now := range at {
		for _, level := range []slog.Level{slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
			for _, l := range lines {
				var want bytes.Buffer
				rec := slog.NewRecord(now, level, "request", 0)
				rec.AddAttrs(slog.String("id", l.ID), slog.String("method", l.Method), slog.String("path", l.Path),
					slog.Int("status", l.Status), slog.Int("bytes", l.Bytes),
					slog.Duration("duration", l.Duration), slog.String("ip", l.IP))
				if err := slog.NewTextHandler(&want, nil).Handle(context.Background(), rec); err != nil {
					t.Fatal(err)
				}
				got, ok := appendRequestLine(nil, now, level, l)
				if !ok {
					t.Fatalf("%+v: fell back to slog, want the fast line", l)
				}
				if string(got) != want.String() {
					t.Errorf("request line differs from slog's:\n got  %q\n want %q", got, want.String())
				}
			}
		}
	}

	for _, path := range []string{"/a b", `/a"b`, "/a=b", "/caf\u00e9", "/tab\tx", `/back\slash`, ""} {
		if _, ok := appendRequestLine(nil, at[0], slog.LevelInfo, RequestLine{ID: "1", Method: "GET", Path: path, IP: "::1"}); ok {
			t.Errorf("path %q took the fast line; slog would quote it or may escape it", path)
		}
	}
}

// TestLogTimeIsSlogsAcrossSeconds: the request line's time, formatted once
// per second and location and kept, is the text slog writes for every
// moment, however the moments follow one another: within a millisecond,
// across millisecond and second boundaries, backwards, in another zone, and
// across a daylight-saving change. A kept second that is not replaced when
// it should be shows here as a wrong second or zone.
func TestLogTimeIsSlogsAcrossSeconds(t *testing.T) {
	slogTime := func(at time.Time) string {
		var buf bytes.Buffer
		if err := slog.NewTextHandler(&buf, nil).Handle(context.Background(), slog.NewRecord(at, slog.LevelInfo, "m", 0)); err != nil {
			t.Fatal(err)
		}
		s, _, _ := strings.Cut(strings.TrimPrefix(buf.String(), "time="), " ")
		return s
	}
	zones := []*time.Location{time.UTC, time.FixedZone("CEST", 2*3600), time.FixedZone("", -(3*3600 + 30*60)), time.Local}
	if ny, err := time.LoadLocation("America/New_York"); err == nil {
		zones = append(zones, ny)
	} else {
		t.Logf("no tz database (%v): the daylight-saving case uses fixed zones only", err)
	}
	// 2026-03-08 07:00:00 UTC is when New York moves from -05:00 to -04:00.
	base := time.Date(2026, 3, 8, 6, 59, 59, 998_400_000, time.UTC)
	steps := []time.Duration{0, 300 * time.Microsecond, 700 * time.Microsecond, time.Millisecond, 1, -1,
		999 * time.Millisecond, time.Second, -time.Second, -1500 * time.Millisecond, time.Hour, -time.Hour + 1}
	at := base
	check := func(at time.Time) {
		t.Helper()
		got := string(appendRFC3339Millis([]byte("x"), at))
		if want := "x" + slogTime(at); got != want {
			t.Fatalf("%s (%s): got %q, slog writes %q", at.Format(time.RFC3339Nano), at.Location(), got, want)
		}
	}
	for round := 0; round < 3; round++ {
		for _, step := range steps {
			at = at.Add(step)
			for _, loc := range zones {
				check(at.In(loc))
			}
			check(at.In(zones[0])) // and back to the first zone within the same second
		}
	}
	for _, at := range []time.Time{
		time.Date(2026, 12, 31, 23, 59, 59, 999_999_999, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 500_000_000, time.UTC), time.Date(1969, 12, 31, 23, 59, 58, 500_000_000, time.UTC),
		time.Date(12026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
	} {
		check(at)
		check(at.Add(time.Millisecond))
	}
}
