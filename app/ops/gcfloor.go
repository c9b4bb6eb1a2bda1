package ops

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// gcFloorBytes is the least headroom the garbage collector is given above
// the live heap.
const gcFloorBytes = 32 << 20

// maxGCPercent bounds what the floor may set GOGC to (a 3 MiB live heap
// would otherwise ask for about 1,100).
const maxGCPercent = 1000

var gcFloorOnce sync.Once

// StartGCFloor keeps the collector from running flat out while the heap is
// small. With Go's default (GOGC=100) a collection starts when the heap
// has grown by as much as is live; a server whose live heap is 3 MiB and
// that answers 40,000 panel polls a second then collects 40 to 60 times a
// second, which costs about a sixth of its CPU (BENCHMARKS.md). After each
// collection the floor sets GOGC so that the next one starts no sooner than
// gcFloorBytes later: GOGC = 100 × max(live, 32 MiB) / live. With a large
// live heap (thousands of event streams, a login flood's argon2 memory)
// that is plain GOGC=100, so the floor costs at most 32 MiB of garbage
// more than the default, and only while the heap is small.
//
// It changes only the collector's pacing (nothing is allocated or
// pinned). An operator who sets GOGC or GOMEMLIMIT decides alone.
func StartGCFloor() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	gcFloorOnce.Do(func() {
		f := &gcFloor{percent: 100, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
		f.tune()
		f.arm()
	})
}

type gcFloor struct {
	percent int
	sample  []metrics.Sample
}

// gcSentinel is garbage on purpose: its finalizer runs after the
// collection that finds it unreachable, and arms the next one.
type gcSentinel struct{ _ [16]byte }

func (f *gcFloor) arm() {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		f.tune()
		f.arm()
	})
}

// tune sets GOGC for the live heap the last collection found.
func (f *gcFloor) tune() {
	metrics.Read(f.sample)
	if f.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	if p := gcPercentFor(f.sample[0].Value.Uint64()); p != f.percent {
		f.percent = p
		debug.SetGCPercent(p)
	}
}

// gcPercentFor is the GOGC that gives a live heap of live bytes at least
// gcFloorBytes of headroom, rounded to tens so that small changes of the
// live heap do not reset it after every collection.
func gcPercentFor(live uint64) int {
	if live == 0 || live >= gcFloorBytes {
		return 100
	}
	p := int(100*gcFloorBytes/live) / 10 * 10
	return min(max(p, 100), maxGCPercent)
}
