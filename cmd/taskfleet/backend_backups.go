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
	s := b.service()
	if s == nil {
		return nil, fmt.Errorf("%w: %w", api.ErrNotReady, errNotStarted)
	}
	o := s.Backups()
	if o == nil {
		return nil, fmt.Errorf("%w: the cache is loading", api.ErrNotReady)
	}
	return o, nil
}
