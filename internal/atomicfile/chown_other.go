//go:build !unix

package atomicfile

import "os"

// chown does nothing where files have no Unix owner.
func chown(*os.File, os.FileInfo) error { return nil }
