package cache

import "io"

// WriteFileAtomic replaces the file name with what fill writes, crash-safe,
// with the cache's one file protocol (temporary file, fsync, rename, fsync
// of the directory; see writeAtomic). Other stores in the cache directory
// (the kept task logs) use it.
func WriteFileAtomic(name string, fill func(w io.Writer) error) error {
	return writeAtomic(osFS{}, name, fill)
}
