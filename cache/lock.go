package cache

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// LockFile is the file a Writer holds an exclusive flock(2) on while the
// directory is open, so that two processes never write one cache. It holds
// the holder's process id, for the message the second one gets. Its content
// is not protected by the lock protocol and is never read for anything else;
// a lock file left behind by a crash is harmless (the kernel released the
// lock with the process).
const LockFile = "lock"

// ErrLocked is wrapped by the error Open returns when another process holds
// the directory's lock.
var ErrLocked = errors.New("cache directory is in use")

// LockedError says which directory is locked and by whom.
type LockedError struct {
	Dir string
	PID int // the holder's process id; 0 when the lock file does not say
}

func (e *LockedError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = "process " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("cache directory %s is in use by %s (another taskfleet daemon?): only one may use a cache directory at a time", e.Dir, holder)
}

// Unwrap makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Unwrap() error { return ErrLocked }

// parseLockPID reads the process id a lock file holds; 0 when it holds
// none.
func parseLockPID(data []byte) int {
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid < 0 {
		return 0
	}
	return pid
}

// lock takes the directory's lock for w; closeFiles releases it.
func (w *Writer) lock() error {
	l, err := w.fs.Lock(w.dir)
	if err != nil {
		return err
	}
	w.lockf = l
	return nil
}

// unlock releases the directory's lock.
func (w *Writer) unlock() {
	if w.lockf != nil {
		w.lockf.Close()
		w.lockf = nil
	}
}
