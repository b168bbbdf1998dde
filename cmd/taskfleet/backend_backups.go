package main

import (
	"context"
	"fmt"

	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/backups"
)

var _ api.BackupBackend = (*backend)(nil)

// Backups implements api.BackupBackend: the service's latest overview,
// never waiting.
func (b *backend) Backups(context.Context) (*backups.Overview, error) {
	o := b.overview()
	if o == nil {
		return nil, fmt.Errorf("backup overview: %w", errNotStarted)
	}
	return o, nil
}
