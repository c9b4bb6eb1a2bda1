package db

import (
	"context"
	"errors"
	"maps"

	"github.com/uptrace/bun"
)

// Access request statuses.
const (
	RequestPending  = "pending"
	RequestApproved = "approved"
	RequestDenied   = "denied"
)

// Audit actions for access requests and denials.
const (
	ActionRequestCreate  = "request.create"
	ActionRequestApprove = "request.approve"
	ActionRequestDeny    = "request.deny"
	ActionAccessDenied   = "access.denied"
)

// MaxRequestMessageLen bounds an access request's message.
const MaxRequestMessageLen = 500

// AccessRequest is a viewer's request to open a dashboard.
type AccessRequest struct {
	bun.BaseModel `bun:"table:access_requests"`

	ID        int64  `bun:"id,pk,autoincrement"`
	UserID    int64  `bun:"user_id,notnull"`
	Dashboard string `bun:"dashboard,notnull"`
	Message   string `bun:"message,notnull"`
	Status    string `bun:"status,notnull"`
	CreatedAt int64  `bun:"created_at,notnull"`
	DecidedAt int64  `bun:"decided_at,nullzero"`
	DecidedBy string `bun:"decided_by,notnull"`
	GroupID   int64  `bun:"group_id,nullzero"`
	Note      string `bun:"note,notnull"`

	// Filled by ListAccessRequests.
	UserEmail string `bun:"user_email,scanonly"`
	UserName  string `bun:"user_name,scanonly"`
	GroupName string `bun:"group_name,scanonly"`
}

// CreateAccessRequest records a pending request; ErrDuplicate when the user
// already has one pending for the dashboard.
func (s *Store) CreateAccessRequest(ctx context.Context, a Actor, userID int64, dashboard, message string) (AccessRequest, error) {
	req := AccessRequest{UserID: userID, Dashboard: dashboard, Message: message, Status: RequestPending, CreatedAt: s.nowMS()}
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&req).Exec(ctx); err != nil {
			return err
		}
		if err := s.insertAudit(ctx, tx, a, Event{Action: ActionRequestCreate, Target: dashboard,
			Detail: map[string]any{"message": message}}); err != nil {
			return err
		}
		if !s.MailEnabled {
			return nil
		}
		to, err := requestDeciders(ctx, tx, dashboard, userID)
		if err != nil {
			return err
		}
		for _, u := range to {
			if err := s.enqueueMail(ctx, tx, MailRequestCreated, u.Email, req.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return req, err
}

// LatestRequests returns the user's most recent request per dashboard.
// Under a Snapshot the answer may come from memory (see authz_cache.go).
func (s *Store) LatestRequests(ctx context.Context, userID int64) (map[string]AccessRequest, error) {
	out, err := remember(ctx, s, requestTable, userID, func() (map[string]AccessRequest, error) {
		var reqs []AccessRequest
		err := s.DB.NewSelect().Model(&reqs).Where("user_id = ?", userID).Order("created_at ASC", "id ASC").Scan(ctx)
		if err != nil {
			return nil, storageErr(err)
		}
		out := make(map[string]AccessRequest, len(reqs))
		for _, r := range reqs {
			out[r.Dashboard] = r
		}
		return out, nil
	})
	return maps.Clone(out), err
}

// ListAccessRequests returns requests with the given status ("" for all),
// oldest pending first for the queue, newest first otherwise.
func (s *Store) ListAccessRequests(ctx context.Context, status string, limit, offset int) ([]AccessRequest, int, error) {
	return s.ListRequests(ctx, RequestFilter{Status: status, Limit: limit, Offset: offset})
}

// RequestFilter narrows ListRequests.
type RequestFilter struct {
	// Status keeps one status ("" for all).
	Status string
	// DecidableBy, when not 0, keeps only the requests that user can decide
	// as a group manager: those for a dashboard granted to a group they
	// manage (see RequestDeciders for the other direction).
	DecidableBy   int64
	Limit, Offset int
}

// ListRequests returns matching requests and their total: oldest first for
// the pending queue, newest first otherwise.
func (s *Store) ListRequests(ctx context.Context, f RequestFilter) ([]AccessRequest, int, error) {
	var reqs []AccessRequest
	if f.Limit <= 0 {
		f.Limit = 50
	}
	q := s.DB.NewSelect().Model(&reqs).ModelTableExpr("access_requests AS r").ColumnExpr("r.*").
		ColumnExpr("u.email AS user_email, u.name AS user_name, COALESCE(g.name, '') AS group_name").
		Join("JOIN users AS u ON u.id = r.user_id").
		Join("LEFT JOIN groups AS g ON g.id = r.group_id")
	if f.Status != "" {
		q = q.Where("r.status = ?", f.Status)
	}
	if f.DecidableBy != 0 {
		q = decidableBy(q, f.DecidableBy)
	}
	if f.Status == RequestPending {
		q = q.OrderExpr("r.created_at ASC, r.id ASC")
	} else {
		q = q.OrderExpr("r.created_at DESC, r.id DESC")
	}
	total, err := q.Limit(int64(f.Limit)).Offset(int64(f.Offset)).ScanAndCount(ctx)
	return reqs, int(total), storageErr(err)
}

// AccessRequestByID returns one request.
func (s *Store) AccessRequestByID(ctx context.Context, id int64) (AccessRequest, error) {
	var r AccessRequest
	err := s.DB.NewSelect().Model(&r).ModelTableExpr("access_requests AS r").ColumnExpr("r.*").
		ColumnExpr("u.email AS user_email, u.name AS user_name, COALESCE(g.name, '') AS group_name").
		Join("JOIN users AS u ON u.id = r.user_id").
		Join("LEFT JOIN groups AS g ON g.id = r.group_id").
		Where("r.id = ?", id).Limit(1).Scan(ctx)
	return r, storageErr(err)
}

// ErrAlreadyDecided means the request is no longer pending.
var ErrAlreadyDecided = errors.New("this request has already been decided")

// DecideAccessRequest approves or denies a pending request. Approval adds
// the user to groupID (which the caller checked is granted the dashboard)
// unless they are already an unexpired member, in the same transaction.
func (s *Store) DecideAccessRequest(ctx context.Context, a Actor, id int64, approve bool, groupID int64, note string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var req AccessRequest
		if err := tx.NewSelect().Model(&req).Where("id = ?", id).Limit(1).Scan(ctx); err != nil {
			return storageErr(err)
		}
		if req.Status != RequestPending {
			return ErrAlreadyDecided
		}
		var u User
		if err := tx.NewSelect().Model(&u).Where("id = ?", req.UserID).Limit(1).Scan(ctx); err != nil {
			return storageErr(err)
		}
		now := s.nowMS()
		status, action := RequestDenied, ActionRequestDeny
		detail := map[string]any{"user": u.Email, "dashboard": req.Dashboard, "note": note}
		if approve {
			status, action = RequestApproved, ActionRequestApprove
			g, err := groupByID(ctx, tx, groupID)
			if err != nil {
				return err
			}
			detail["group"] = g.Name
			// Insert the membership, or renew an expired one.
			var m Membership
			err = tx.NewSelect().Model(&m).Where("group_id = ? AND user_id = ?", groupID, u.ID).Scan(ctx)
			switch {
			case errors.Is(storageErr(err), ErrNotFound):
				if _, err := tx.NewInsert().Model(&Membership{GroupID: groupID, UserID: u.ID, CreatedAt: now}).Exec(ctx); err != nil {
					return err
				}
				if err := s.insertAudit(ctx, tx, a, Event{Action: ActionMemberAdd, Target: g.Name + " / " + u.Email,
					Detail: map[string]any{"after": map[string]any{"group": g.Name, "user": u.Email}, "request": id}}); err != nil {
					return err
				}
			case err != nil:
				return err
			case m.ExpiresAt != 0 && m.ExpiresAt <= now:
				if _, err := tx.NewUpdate().Model((*Membership)(nil)).Set("expires_at = NULL").
					Where("group_id = ? AND user_id = ?", groupID, u.ID).Exec(ctx); err != nil {
					return err
				}
			}
		} else {
			groupID = 0
		}
		q := tx.NewUpdate().Model((*AccessRequest)(nil)).Set("status = ?", status).Set("decided_at = ?", now).
			Set("decided_by = ?", a.Email).Set("note = ?", note).Where("id = ?", id)
		if groupID != 0 {
			q = q.Set("group_id = ?", groupID)
		}
		if _, err := q.Exec(ctx); err != nil {
			return err
		}
		if err := s.insertAudit(ctx, tx, a, Event{Action: action, Target: req.Dashboard + " / " + u.Email, Detail: detail}); err != nil {
			return err
		}
		if s.MailEnabled && u.IsActive {
			return s.enqueueMail(ctx, tx, MailRequestDecided, u.Email, id)
		}
		return nil
	})
}

// CountPendingRequests counts requests waiting for an admin.
func (s *Store) CountPendingRequests(ctx context.Context) (int, error) {
	n, err := s.DB.NewSelect().Model((*AccessRequest)(nil)).Where("status = ?", RequestPending).Count(ctx)
	return int(n), storageErr(err)
}
