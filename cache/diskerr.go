package cache

import (
	"errors"
	"io/fs"
	"syscall"
)

// Kinds of disk errors, as DiskErrorKind names them (the "kind" label of
// taskfleet_cache_write_errors_total).
const (
	DiskNoSpace  = "no_space"  // ENOSPC, EDQUOT: the disk or the quota is full
	DiskIO       = "io"        // EIO: the device failed
	DiskReadOnly = "read_only" // EROFS: the file system is read-only
	DiskOther    = "other"     // any other failed file operation
)

// DiskErrorKinds lists every kind DiskErrorKind returns.
var DiskErrorKinds = []string{DiskNoSpace, DiskIO, DiskReadOnly, DiskOther}

// DiskErrorKind classifies an error of Open or of a Writer's method: one of
// DiskErrorKinds when the disk failed (the change was not made durable and
// a retry may succeed once the disk is back), "" for any other error
// (invalid input, a closed Writer, a directory in use).
func DiskErrorKind(err error) string {
	switch {
	case err == nil, errors.Is(err, ErrLocked), errors.Is(err, ErrClosed):
		return ""
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return DiskNoSpace
	case errors.Is(err, syscall.EIO):
		return DiskIO
	case errors.Is(err, syscall.EROFS):
		return DiskReadOnly
	}
	var pe *fs.PathError
	if errors.As(err, &pe) || errors.Is(err, ErrFailed) {
		return DiskOther
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return DiskOther
	}
	return ""
}
