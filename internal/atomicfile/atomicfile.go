// Package atomicfile is the project's one crash-safe way to replace a
// small file outside the cache (the configuration file, the API's
// self-signed certificate, the simulator's files): a temporary file in
// the same directory, fsync, rename over the target, fsync of the
// directory. After a crash at any point the target holds its old or its
// new content, never a mix; a crash can leave a temporary file named
// "." + base + TmpInfix + random beside it, which RemoveTemps removes.
//
// The cache's own files use the same protocol through cache.WriteFileAtomic,
// which runs over the cache's fault-injecting file system in its tests.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// TmpInfix is what the names of temporary files contain, between "." and
// the target's base name on the left and random characters on the right.
const TmpInfix = ".tmp-"

// RemoveTemps removes the temporary files a crash during a WriteFile or
// Replace of name left beside it. Files already gone are fine.
func RemoveTemps(name string) error {
	tmps, err := filepath.Glob(filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+TmpInfix+"*"))
	if err != nil {
		return fmt.Errorf("remove temporary files of %s: %w", name, err)
	}
	for _, t := range tmps {
		if err := os.Remove(t); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove temporary files of %s: %w", name, err)
		}
	}
	return nil
}

// WriteFile replaces the file name with data, crash-safely, with mode
// perm.
func WriteFile(name string, data []byte, perm os.FileMode) error {
	return write(name, data, perm, nil)
}

// Replace is WriteFile for a file people edit and a service reads: an
// existing file keeps its mode and, where the caller may set them, its
// owner and group (an edit under sudo must not give root a file the
// service reads). A new file gets perm.
func Replace(name string, data []byte, perm os.FileMode) error {
	fi, err := os.Stat(name)
	if err != nil {
		return write(name, data, perm, nil)
	}
	return write(name, data, fi.Mode().Perm(), fi)
}

func write(name string, data []byte, perm os.FileMode, orig os.FileInfo) (err error) {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+TmpInfix+"*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	werr := f.Chmod(perm)
	if werr == nil && orig != nil {
		werr = chown(f, orig)
	}
	if werr == nil {
		_, werr = f.Write(data)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("write %s: %w", name, werr)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: sync directory: %w", name, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("write %s: sync directory: %w", name, err)
	}
	return nil
}
