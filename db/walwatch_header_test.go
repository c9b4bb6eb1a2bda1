package db

import (
	"encoding/binary"
	"testing"
)

// walIndexHeader builds one copy of SQLite's wal-index header
// (WalIndexHdr, 48 bytes, native byte order; https://www.sqlite.org/walformat.html).
func walIndexHeader(iChange, mxFrame uint32, isInit byte) []byte {
	h := make([]byte, walHeaderWords*4)
	e := binary.NativeEndian
	e.PutUint32(h[0:], 3007000) // iVersion
	e.PutUint32(h[8:], iChange)
	h[walIsInitByte] = isInit
	e.PutUint16(h[14:], 4096) // szPage
	e.PutUint32(h[16:], mxFrame)
	e.PutUint32(h[20:], 42)               // nPage
	e.PutUint32(h[24:], 0x1234+mxFrame)   // aFrameCksum
	e.PutUint32(h[32:], 0xdeadbeef)       // aSalt
	e.PutUint32(h[40:], 0xc0ffee+iChange) // aCksum
	return h
}

// TestWALWatchRefusesTornHeaders: the watch trusts the wal-index header only
// when both copies agree and it is initialised. A writer writes copy 2 and
// then copy 1, so a header read between the two is torn: trusting it could
// pair a version with a header no commit ever finished, and a request would
// be answered from memory after a change. Each torn or uninitialised header
// must mean "read the database".
func TestWALWatchRefusesTornHeaders(t *testing.T) {
	page := make([]byte, 4096) // as mapped: the header's two copies, then the rest
	w := &walWatch{mem: page}
	set := func(copy1, copy2 []byte) {
		copy(page[0:], copy1)
		copy(page[len(copy1):], copy2)
	}

	set(walIndexHeader(7, 100, 1), walIndexHeader(7, 100, 1))
	before, ok := w.stamp()
	if !ok {
		t.Fatal("a consistent, initialised header is not trusted")
	}
	// A commit in progress: copy 2 is new, copy 1 still old.
	set(walIndexHeader(7, 100, 1), walIndexHeader(8, 101, 1))
	if _, ok := w.stamp(); ok {
		t.Error("a torn header (copy 2 written, copy 1 not yet) is trusted")
	}
	// Copies that differ in one word only (the checksum).
	torn := walIndexHeader(7, 100, 1)
	torn[40] ^= 1
	set(walIndexHeader(7, 100, 1), torn)
	if _, ok := w.stamp(); ok {
		t.Error("copies differing only in their checksum are trusted")
	}
	// Not initialised (a new or reset wal-index).
	set(walIndexHeader(7, 100, 0), walIndexHeader(7, 100, 0))
	if _, ok := w.stamp(); ok {
		t.Error("an uninitialised header is trusted")
	}
	// The commit finished: trusted again, and not equal to the old stamp.
	set(walIndexHeader(8, 101, 1), walIndexHeader(8, 101, 1))
	after, ok := w.stamp()
	if !ok || after == before {
		t.Errorf("after a finished commit: trusted %v, stamp changed %v", ok, after != before)
	}
	w.mem = nil // closed
	if _, ok := w.stamp(); ok {
		t.Error("a closed watch is trusted")
	}
	var none *walWatch
	if _, ok := none.stamp(); ok {
		t.Error("no watch is trusted")
	}
}
