//go:build unix

package cache

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// lockHandle is a held lock: closing the file releases it.
type lockHandle struct{ f *os.File }

func (l *lockHandle) Close() error { return l.f.Close() }

// Lock takes an exclusive, non-blocking flock(2) on dir's LockFile and
// writes the process id into it. The lock belongs to the open file, so a
// second Open in the same process fails too.
func (osFS) Lock(dir string) (io.Closer, error) {
	name := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := flock(f); err != nil {
		data, _ := os.ReadFile(name)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Dir: dir, PID: parseLockPID(data)}
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	// The pid is only for the message of a second process: not synced.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &lockHandle{f: f}, nil
}

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
