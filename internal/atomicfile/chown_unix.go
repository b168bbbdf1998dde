//go:build unix

package atomicfile

import (
	"errors"
	"os"
	"syscall"
)

// chown gives f the owner and group of orig, as far as the caller may:
// not root, only a group the caller is in, and else the file stays the
// caller's (EPERM is not an error).
func chown(f *os.File, orig os.FileInfo) error {
	st, ok := orig.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getegid() {
		return nil
	}
	err := f.Chown(int(st.Uid), int(st.Gid))
	if errors.Is(err, syscall.EPERM) {
		// Not root: at least the group, when the caller is in it.
		err = f.Chown(-1, int(st.Gid))
	}
	if errors.Is(err, syscall.EPERM) {
		return nil
	}
	return err
}
