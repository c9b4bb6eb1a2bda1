package db

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
	"golang.org/x/crypto/argon2"
)

// PasswordParams are the argon2id parameters for new hashes: OWASP's
// recommended minimum (m=19 MiB, t=2, p=1), set explicitly because the
// library's defaults are for development.
var PasswordParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// Bounds for stored hashes: a hash asking for more than this is refused
// rather than letting one row make every login allocate gigabytes.
const (
	maxHashMemoryKiB  = 256 * 1024
	maxHashIterations = 16
	maxHashParallel   = 16
	maxHashKeyLen     = 128
	maxHashSaltLen    = 128
	minHashKeyLen     = 16
)

// Password policy limits.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// ErrBusy means too many password hashes are already running; the caller
// should answer 503 with Retry-After.
var ErrBusy = errors.New("too many logins at once, try again in a moment")

// ErrBadHash means a stored hash is malformed or has unsafe parameters.
var ErrBadHash = errors.New("stored password hash is invalid")

//go:embed common-passwords.txt
var commonPasswordsText string

var commonPasswords = func() map[string]struct{} {
	m := make(map[string]struct{})
	for _, line := range strings.Split(commonPasswordsText, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			m[strings.ToLower(line)] = struct{}{}
		}
	}
	return m
}()

// CheckPasswordPolicy returns a user-facing reason a new password is not
// acceptable, or nil. Passwords are never truncated or case-folded; the
// common-password list is matched case-insensitively so "Password1234"
// does not slip past "password1234".
func CheckPasswordPolicy(pw string) error {
	if !utf8.ValidString(pw) {
		return errors.New("the password contains invalid characters")
	}
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinPasswordLen:
		return fmt.Errorf("the password must be at least %d characters long", MinPasswordLen)
	case n > MaxPasswordLen:
		return fmt.Errorf("the password must be at most %d characters long", MaxPasswordLen)
	}
	if _, common := commonPasswords[strings.ToLower(pw)]; common {
		return errors.New("that password is too common; choose another")
	}
	return nil
}

// Hasher hashes and verifies passwords with argon2id, running at most a few
// hashes at once so a flood of logins cannot exhaust memory: each hash needs
// PasswordParams.Memory KiB, so peak hashing memory is bounded by
// Slots × 19 MiB.
type Hasher struct {
	params *argon2id.Params
	sem    chan struct{}
	wait   time.Duration
	dummy  string

	// OnWait, when set before the hasher is used, is told how long each
	// hash waited for a slot and whether it got one (metrics).
	OnWait func(wait time.Duration, got bool)
}

// NewHasher returns a Hasher with slots concurrent hashes (0 means one
// fewer than the number of CPUs, at least one) that waits at most wait for
// a free slot.
//
// Leaving a CPU to everything else is what keeps dashboards responsive
// during a flood of logins: each hash holds a CPU for tens of milliseconds,
// and with every CPU hashing, panel requests wait for the Go scheduler to
// preempt one (p99 ~60 ms at 1000 panel requests/s during 64 concurrent
// logins on 2 cores, ~20 ms with one CPU left free; see BENCHMARKS.md).
func NewHasher(params *argon2id.Params, slots int, wait time.Duration) *Hasher {
	if params == nil {
		params = PasswordParams
	}
	if slots <= 0 {
		slots = max(1, runtime.NumCPU()-1)
	}
	return &Hasher{params: params, sem: make(chan struct{}, slots), wait: wait, dummy: dummyHash(params)}
}

// dummyHash is an encoded argon2id hash with params, a random salt and a
// random key: verifying any password against it costs what verifying
// against a real hash costs, and never matches. Nothing is hashed to make
// it, so starting Gatehouse does not spend 19 MiB and tens of milliseconds
// on a hash nobody needs yet.
func dummyHash(params *argon2id.Params) string {
	salt := make([]byte, params.SaltLength)
	key := make([]byte, params.KeyLength)
	rand.Read(salt)
	rand.Read(key)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		params.Memory, params.Iterations, params.Parallelism,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Slots is how many hashes may run at once.
func (h *Hasher) Slots() int { return cap(h.sem) }

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		h.observe(0, true)
		return nil
	default:
	}
	start := time.Now()
	t := time.NewTimer(h.wait)
	defer t.Stop()
	select {
	case h.sem <- struct{}{}:
		h.observe(time.Since(start), true)
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	h.observe(time.Since(start), false)
	return ErrBusy
}

func (h *Hasher) observe(wait time.Duration, got bool) {
	if h.OnWait != nil {
		h.OnWait(wait, got)
	}
}

func (h *Hasher) release() { <-h.sem }

// Hash returns the argon2id hash of pw.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return argon2id.CreateHash(pw, h.params)
}

// Verify checks pw against a stored hash. It returns whether it matched and
// whether the hash should be replaced because its parameters differ from the
// current ones. An empty hash is checked against a dummy hash so unknown
// users take as long as known ones.
func (h *Hasher) Verify(ctx context.Context, pw, hash string) (ok, rehash bool, err error) {
	dummy := hash == ""
	if dummy {
		hash = h.dummy
	}
	params, salt, key, err := DecodeHash(hash)
	if err != nil {
		return false, false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	other := argon2.IDKey([]byte(pw), salt, params.Iterations, params.Memory, params.Parallelism, params.KeyLength)
	match := subtle.ConstantTimeCompare(key, other) == 1
	if dummy {
		return false, false, nil
	}
	rehash = params.Memory != h.params.Memory || params.Iterations != h.params.Iterations ||
		params.Parallelism != h.params.Parallelism || params.KeyLength != h.params.KeyLength
	return match, match && rehash, nil
}

// DecodeHash parses a PHC-format argon2id hash and refuses parameters
// outside sane bounds.
func DecodeHash(hash string) (*argon2id.Params, []byte, []byte, error) {
	if len(hash) > 512 {
		return nil, nil, nil, ErrBadHash
	}
	params, salt, key, err := argon2id.DecodeHash(hash)
	if err != nil {
		return nil, nil, nil, ErrBadHash
	}
	if params.Memory < 8*uint32(params.Parallelism) || params.Memory > maxHashMemoryKiB ||
		params.Iterations < 1 || params.Iterations > maxHashIterations ||
		params.Parallelism < 1 || params.Parallelism > maxHashParallel ||
		len(key) < minHashKeyLen || len(key) > maxHashKeyLen ||
		len(salt) < 8 || len(salt) > maxHashSaltLen {
		return nil, nil, nil, ErrBadHash
	}
	return params, salt, key, nil
}

// TemporaryPassword returns a random password for first login (about 100
// bits, grouped for reading aloud: "k7qm-x2pt-…"); users must change it.
func TemporaryPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	var b strings.Builder
	buf := make([]byte, 20)
	if _, err := rand.Read(buf); err != nil {
		panic(err)
	}
	for i, c := range buf {
		if i > 0 && i%5 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return b.String()
}

// HoldForTest occupies every slot until the returned func is called, so
// tests can observe overload shedding deterministically.
func (h *Hasher) HoldForTest() (release func()) {
	for i := 0; i < cap(h.sem); i++ {
		h.sem <- struct{}{}
	}
	return func() {
		for i := 0; i < cap(h.sem); i++ {
			<-h.sem
		}
	}
}
