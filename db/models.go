package db

import (
	"time"

	"github.com/uptrace/bun"
)

// User is a person who can log in.
type User struct {
	bun.BaseModel `bun:"table:users"`

	ID                 int64  `bun:"id,pk,autoincrement"`
	Email              string `bun:"email,notnull"`
	Name               string `bun:"name,notnull"`
	PasswordHash       string `bun:"password_hash,notnull"`
	IsAdmin            bool   `bun:"is_admin,notnull"`
	IsActive           bool   `bun:"is_active,notnull"`
	MustChangePassword bool   `bun:"must_change_password,notnull"`
	CreatedAt          int64  `bun:"created_at,notnull"`
	UpdatedAt          int64  `bun:"updated_at,notnull"`
	LastLoginAt        int64  `bun:"last_login_at,nullzero"`
	// EmailPending marks a sign-up whose emailed confirmation link has not
	// been opened yet: such an account cannot log in.
	EmailPending bool `bun:"email_pending,notnull"`
}

// HasPassword reports whether u can sign in with a password: someone
// created at their first sign-in with the identity provider has none.
func (u User) HasPassword() bool { return u.PasswordHash != "" }

// DisplayName is the user's name, or their email when they have none.
func (u User) DisplayName() string {
	if u.Name != "" {
		return u.Name
	}
	return u.Email
}

// Group is a named set of users that dashboards are granted to.
type Group struct {
	bun.BaseModel `bun:"table:groups"`

	ID          int64  `bun:"id,pk,autoincrement"`
	Name        string `bun:"name,notnull"`
	NameKey     string `bun:"name_key,notnull"`
	Description string `bun:"description,notnull"`
	CreatedAt   int64  `bun:"created_at,notnull"`
	UpdatedAt   int64  `bun:"updated_at,notnull"`

	// MemberCount is filled by list queries.
	MemberCount int `bun:"member_count,scanonly"`
	// GrantCount is filled by list queries.
	GrantCount int `bun:"grant_count,scanonly"`
}

// Membership puts a user in a group, optionally until ExpiresAt.
type Membership struct {
	bun.BaseModel `bun:"table:memberships"`

	GroupID   int64 `bun:"group_id,pk"`
	UserID    int64 `bun:"user_id,pk"`
	ExpiresAt int64 `bun:"expires_at,nullzero"`
	CreatedAt int64 `bun:"created_at,notnull"`
	// Source is SourceManual or SourceIdP; IdPGroup names the IdP group
	// that feeds an "idp" membership.
	Source   string `bun:"source,notnull,default:'manual'"`
	IdPGroup string `bun:"idp_group,notnull"`
}

// Grant lets the members of a group open a dashboard.
type Grant struct {
	bun.BaseModel `bun:"table:grants"`

	Dashboard string `bun:"dashboard,pk"`
	GroupID   int64  `bun:"group_id,pk"`
	CreatedAt int64  `bun:"created_at,notnull"`
}

// SessionRow is the server-side half of a login session.
type SessionRow struct {
	bun.BaseModel `bun:"table:sessions"`

	IDHash     string `bun:"id_hash,pk"`
	UserID     int64  `bun:"user_id,notnull"`
	CreatedAt  int64  `bun:"created_at,notnull"`
	LastSeenAt int64  `bun:"last_seen_at,notnull"`
	ExpiresAt  int64  `bun:"expires_at,notnull"`
	IP         string `bun:"ip,notnull"`
	UserAgent  string `bun:"user_agent,notnull"`
	Data       []byte `bun:"data"`
	// AuthMethod is how the session was authenticated (MethodPassword, …).
	AuthMethod string `bun:"auth_method,notnull"`
}

// AuditEvent is one line of the audit log.
type AuditEvent struct {
	bun.BaseModel `bun:"table:audit_events"`

	ID         int64  `bun:"id,pk,autoincrement"`
	At         int64  `bun:"at,notnull"`
	ActorID    int64  `bun:"actor_id,nullzero"`
	ActorEmail string `bun:"actor_email,notnull"`
	Action     string `bun:"action,notnull"`
	Target     string `bun:"target,notnull"`
	Detail     string `bun:"detail,notnull"`
	IP         string `bun:"ip,notnull"`
}

// Time returns when the event happened.
func (e AuditEvent) Time() time.Time { return time.UnixMilli(e.At).UTC() }

// Actor is who performs a change, for the audit log. The zero Actor is the
// system itself; CLI commands use Actor{Email: "cli"}.
type Actor struct {
	ID    int64
	Email string
	IP    string
}

// MS converts a time to the stored Unix milliseconds (0 for the zero time).
func MS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromMS converts stored Unix milliseconds to a time (zero for 0).
func FromMS(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
