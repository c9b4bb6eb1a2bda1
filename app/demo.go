package app

import (
	"context"
	"io"
)

// SeedDemo (TEMPORARY: being written).
func (a *App) SeedDemo(ctx context.Context, out io.Writer) error { return nil }
