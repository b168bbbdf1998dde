package cache

import (
	"fmt"
	"io"
	"io/fs"
	"sync"
	"syscall"
	"time"
)

// DiskFault is a kind of disk failure that Faults injects.
type DiskFault int

// The disk faults, as the kernel reports them.
const (
	FaultNone     DiskFault = iota
	FaultNoSpace            // writes fail with ENOSPC (a full disk); the rest works
	FaultIO                 // writes, truncations and fsyncs fail with EIO (a dying disk)
	FaultReadOnly           // every change fails with EROFS (remounted read-only after errors)
	FaultSlowSync           // every fsync takes Faults.SlowSync (default 2×SlowSyncThreshold) and succeeds
	numFaults
)

var faultNames = [numFaults]string{"none", "enospc", "eio", "read-only", "slow-fsync"}

func (k DiskFault) String() string {
	if k >= 0 && k < numFaults {
		return faultNames[k]
	}
	return fmt.Sprintf("DiskFault(%d)", int(k))
}

// DiskFaults lists the faults Faults can inject, FaultNone aside.
var DiskFaults = []DiskFault{FaultNoSpace, FaultIO, FaultReadOnly, FaultSlowSync}

// Faults injects disk faults into every file operation of the Writers
// opened with it (Options.Faults), on top of the real file system: for
// tests of the layers above the cache, such as the actors' chaos soak,
// which switch faults on and off while the Writer runs. The zero value
// injects nothing. It is safe for concurrent use.
type Faults struct {
	mu    sync.Mutex
	kind  DiskFault
	slow  time.Duration
	count [numFaults]int64
}

// Set makes every later file operation meet kind (FaultNone: none). A
// slow fsync sleeps (in a testing/synctest bubble, on the fake clock).
func (f *Faults) Set(kind DiskFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kind = kind
}

// SetSlowSync sets how long a FaultSlowSync fsync takes.
func (f *Faults) SetSlowSync(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.slow = d
}

// Current returns the fault being injected.
func (f *Faults) Current() DiskFault {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.kind
}

// Count returns how many file operations met kind so far.
func (f *Faults) Count(kind DiskFault) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if kind < 0 || kind >= numFaults {
		return 0
	}
	return f.count[kind]
}

// Operations a fault can hit.
type faultOp int

const (
	opMkdir faultOp = iota
	opCreate
	opWrite
	opTruncate
	opSync
	opSyncDir
	opRename
	opRemove
	opLock
)

// hit returns the error an operation meets now, or sleeps for a slow
// fsync; it counts what it injected.
func (f *Faults) hit(op faultOp, name string, opName string) error {
	f.mu.Lock()
	kind, slow := f.kind, f.slow
	var errno syscall.Errno
	switch kind {
	case FaultNoSpace:
		if op == opWrite {
			errno = syscall.ENOSPC
		}
	case FaultIO:
		switch op {
		case opWrite, opTruncate, opSync, opSyncDir:
			errno = syscall.EIO
		}
	case FaultReadOnly:
		errno = syscall.EROFS
	case FaultSlowSync:
		if op != opSync && op != opSyncDir {
			kind = FaultNone
		}
	}
	if errno != 0 || kind == FaultSlowSync {
		f.count[kind]++
	}
	f.mu.Unlock()
	if kind == FaultSlowSync {
		if slow <= 0 {
			slow = 2 * SlowSyncThreshold
		}
		time.Sleep(slow)
		return nil
	}
	if errno != 0 {
		return &fs.PathError{Op: opName, Path: name, Err: errno}
	}
	return nil
}

// faultFS is a file system whose operations meet the injected faults.
type faultFS struct {
	fsys
	f *Faults
}

func (x faultFS) MkdirAll(dir string, perm fs.FileMode) error {
	if err := x.f.hit(opMkdir, dir, "mkdir"); err != nil {
		return err
	}
	return x.fsys.MkdirAll(dir, perm)
}

func (x faultFS) Create(name string, perm fs.FileMode) (wfile, error) {
	if err := x.f.hit(opCreate, name, "open"); err != nil {
		return nil, err
	}
	w, err := x.fsys.Create(name, perm)
	if err != nil {
		return nil, err
	}
	return faultFile{w, name, x.f}, nil
}

func (x faultFS) OpenAppend(name string, perm fs.FileMode) (wfile, error) {
	if err := x.f.hit(opCreate, name, "open"); err != nil {
		return nil, err
	}
	w, err := x.fsys.OpenAppend(name, perm)
	if err != nil {
		return nil, err
	}
	return faultFile{w, name, x.f}, nil
}

func (x faultFS) Rename(oldname, newname string) error {
	if err := x.f.hit(opRename, oldname, "rename"); err != nil {
		return err
	}
	return x.fsys.Rename(oldname, newname)
}

func (x faultFS) Remove(name string) error {
	if err := x.f.hit(opRemove, name, "remove"); err != nil {
		return err
	}
	return x.fsys.Remove(name)
}

func (x faultFS) SyncDir(dir string) error {
	if err := x.f.hit(opSyncDir, dir, "sync"); err != nil {
		return err
	}
	return x.fsys.SyncDir(dir)
}

func (x faultFS) Lock(dir string) (io.Closer, error) {
	if err := x.f.hit(opLock, dir, "open"); err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	return x.fsys.Lock(dir)
}

// faultFile is a file open for writing whose operations meet the faults.
type faultFile struct {
	wfile
	name string
	f    *Faults
}

func (x faultFile) Write(p []byte) (int, error) {
	if err := x.f.hit(opWrite, x.name, "write"); err != nil {
		return 0, err
	}
	return x.wfile.Write(p)
}

func (x faultFile) Sync() error {
	if err := x.f.hit(opSync, x.name, "sync"); err != nil {
		return err
	}
	return x.wfile.Sync()
}

func (x faultFile) Truncate(size int64) error {
	if err := x.f.hit(opTruncate, x.name, "truncate"); err != nil {
		return err
	}
	return x.wfile.Truncate(size)
}
