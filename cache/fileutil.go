package cache

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// File and directory modes of the cache.
const (
	dirMode  fs.FileMode = 0o750
	fileMode fs.FileMode = 0o640
)

// fsys is the file system as the cache uses it. Production code uses osFS;
// tests substitute a file system that loses unsynced data and fails on
// demand, to check crash consistency. Names are full paths.
type fsys interface {
	MkdirAll(dir string, perm fs.FileMode) error
	// ReadDir returns the names of the entries of dir.
	ReadDir(dir string) ([]string, error)
	ReadFile(name string) ([]byte, error)
	Open(name string) (io.ReadCloser, error)
	// Create creates or truncates name for writing.
	Create(name string, perm fs.FileMode) (wfile, error)
	// OpenAppend opens name for appending, creating it if needed.
	OpenAppend(name string, perm fs.FileMode) (wfile, error)
	Rename(oldname, newname string) error
	Remove(name string) error
	// SyncDir makes the entries of dir (creations, renames, removals)
	// durable.
	SyncDir(dir string) error
	// Lock takes the exclusive lock of dir (see LockFile) or fails with a
	// *LockedError; closing the result releases it.
	Lock(dir string) (io.Closer, error)
}

// wfile is a file open for writing.
type wfile interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
}

// osFS is the operating system's file system.
type osFS struct{}

func (osFS) MkdirAll(dir string, perm fs.FileMode) error { return os.MkdirAll(dir, perm) }

func (osFS) ReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

func (osFS) ReadFile(name string) ([]byte, error)    { return os.ReadFile(name) }
func (osFS) Open(name string) (io.ReadCloser, error) { return os.Open(name) }

func (osFS) Create(name string, perm fs.FileMode) (wfile, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
}

func (osFS) OpenAppend(name string, perm fs.FileMode) (wfile, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, perm)
}

func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (osFS) Remove(name string) error             { return os.Remove(name) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// atomicBufs are writeAtomic's 64 KiB write buffers: the kept task logs
// and the backup overview's per-remote state are written with it, and a
// steady sweep of 10,000 remotes allocated 35 MB of these buffers
// (docs/benchmarks.md).
var atomicBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// writeAtomic is the cache's one way to replace a file: it writes what fill
// produces to name+TmpSuffix, fsyncs it, renames it over name and fsyncs
// the directory. After a crash at any point name holds either its old or
// its new content, never a mix; a leftover temporary file is removed by
// removeOrphans when the cache is opened.
func writeAtomic(fsys fsys, name string, fill func(w io.Writer) error) (err error) {
	tmp := name + TmpSuffix
	f, err := fsys.Create(tmp, fileMode)
	if err != nil {
		return fmt.Errorf("create %s: %w", filepath.Base(tmp), err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			fsys.Remove(tmp) // best effort: Open removes orphans too
		}
	}()
	bw := atomicBufs.Get().(*bufio.Writer)
	bw.Reset(f)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil) // the pool keeps the buffer, not the file
	atomicBufs.Put(bw)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(tmp), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", filepath.Base(tmp), err)
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return fmt.Errorf("close %s: %w", filepath.Base(tmp), cerr)
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename %s: %w", filepath.Base(tmp), err)
	}
	if err := fsys.SyncDir(filepath.Dir(name)); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// removeFiles removes names from dir and then fsyncs dir once. Names that
// are already gone are fine.
func removeFiles(fsys fsys, dir string, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	for _, n := range names {
		if err := fsys.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", n, err)
		}
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// removeOrphans removes the temporary files a crash left behind.
func removeOrphans(fsys fsys, dir string, names []string) error {
	var tmps []string
	for _, n := range names {
		if strings.HasSuffix(n, TmpSuffix) {
			tmps = append(tmps, n)
		}
	}
	if err := removeFiles(fsys, dir, tmps...); err != nil {
		return fmt.Errorf("remove temporary files: %w", err)
	}
	return nil
}
