package db

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeHash: any stored string either decodes to bounded parameters or
// is refused; it never panics or asks for absurd memory.
func FuzzDecodeHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$c2FsdA$a2V5")
	f.Add("$argon2id$v=19$m=0,t=0,p=0$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, hash string) {
		p, salt, key, err := DecodeHash(hash)
		if err != nil {
			return
		}
		if p.Memory > maxHashMemoryKiB || p.Iterations > maxHashIterations || p.Parallelism > maxHashParallel ||
			p.Iterations == 0 || p.Parallelism == 0 || len(key) > maxHashKeyLen || len(salt) > maxHashSaltLen {
			t.Fatalf("accepted unbounded parameters %+v (salt %d, key %d)", p, len(salt), len(key))
		}
	})
}

// FuzzCleanName: a cleaned name is trimmed, valid UTF-8, free of control
// characters, within bounds, and cleaning it again changes nothing.
func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"sales", "  Sales Leads  ", "", "<img src=x onerror=alert(1)>", "a\x00b", "\xff\xfe", strings.Repeat("é", 65), "tab\there"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := CleanGroupName(in)
		if err != nil {
			return
		}
		if out != strings.TrimSpace(out) || !utf8.ValidString(out) {
			t.Fatalf("%q cleaned to %q", in, out)
		}
		if n := utf8.RuneCountInString(out); n < 1 || n > MaxGroupNameLen {
			t.Fatalf("%q cleaned to %d characters", in, n)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character in %q", out)
			}
		}
		if again, err := CleanGroupName(out); err != nil || again != out {
			t.Fatalf("cleaning is not idempotent: %q -> %q, %v", out, again, err)
		}
	})
}
