package db

import "context"

// MaxAuditID is the id of the newest audit event (0 when there is none).
func (s *Store) MaxAuditID(ctx context.Context) (int64, error) {
	var id int64
	err := s.DB.NewRaw("SELECT COALESCE(MAX(id), 0) FROM audit_events").Scan(ctx, &id)
	return id, storageErr(err)
}

// AuditFrom returns up to limit audit events with ids from id on, oldest
// first: the order log shippers want.
func (s *Store) AuditFrom(ctx context.Context, id int64, limit int) ([]AuditEvent, error) {
	var events []AuditEvent
	err := s.DB.NewSelect().Model(&events).Where("id >= ?", id).OrderExpr("id ASC").Limit(int64(limit)).Scan(ctx)
	return events, storageErr(err)
}
