package ops

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// The floor gives a small heap 32 MiB of headroom and leaves a large one at
// Go's default.
func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 100},
		{1 << 20, maxGCPercent}, // 1 MiB live: 3,200 capped at 1,000
		{3 << 20, maxGCPercent}, // 3 MiB: 1,066 capped
		{4 << 20, 800},          // 4 MiB: 32 MiB of headroom
		{10 << 20, 320},         // 10 MiB
		{16 << 20, 200},         // 16 MiB
		{31 << 20, 100},         // 103 rounds down to 100
		{32 << 20, 100},         // from here on, GOGC=100
		{400 << 20, 100},        // thousands of event streams
	} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// Once started, the floor re-tunes after every collection: in a test
// process (a live heap of a few MiB) GOGC goes well above 100.
func TestGCFloorRaisesGOGCForASmallHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	StartGCFloor()
	runtime.GC()
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	if metrics.Read(live); live[0].Value.Uint64() >= gcFloorBytes/2 {
		t.Skipf("this test process has %d MiB live, too much to see the floor", live[0].Value.Uint64()>>20)
	}
	for range 200 {
		runtime.GC() // the sentinel's finalizer runs after a collection
		time.Sleep(5 * time.Millisecond)
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		if p > 100 {
			return
		}
	}
	t.Fatal("GOGC stayed at 100 after 200 collections with a small heap")
}
