//go:build !unix

package cache

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// lockHandle is a held lock file; without flock(2) it excludes nothing.
type lockHandle struct{ f *os.File }

func (l *lockHandle) Close() error { return l.f.Close() }

// Lock creates the lock file; on systems without flock(2) it does not
// exclude a second process.
func (osFS) Lock(dir string) (io.Closer, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	return &lockHandle{f: f}, nil
}
