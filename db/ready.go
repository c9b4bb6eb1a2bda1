package db

import (
	"context"
	"fmt"
)

// Ready checks what a load balancer needs before sending a server traffic:
// the database answers, and its schema is the one this build expects (all
// of its migrations applied, none newer). It returns nil or an error that
// says which is wrong.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return err
	}
	applied, err := s.appliedVersion(ctx)
	if err != nil {
		return err
	}
	if want := s.SchemaVersion(); applied != want {
		return fmt.Errorf("the database schema is at version %d, this build expects %d", applied, want)
	}
	return nil
}
