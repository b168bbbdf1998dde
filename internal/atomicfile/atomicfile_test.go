package atomicfile

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
)

// onlyTarget fails unless dir holds just the file base (no temporary
// file left behind).
func onlyTarget(t *testing.T, dir, base string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != base {
		t.Errorf("directory holds %v, want only %s", ents, base)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "key.pem")
	if err := WriteFile(name, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, 0o644); err != nil {
		t.Fatal(err)
	}
	// WriteFile sets perm whatever the old file's mode was.
	if err := WriteFile(name, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(name); string(got) != "two" {
		t.Errorf("content %q, want two", got)
	}
	if fi, _ := os.Stat(name); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode())
	}
	onlyTarget(t, dir, "key.pem")
}

func TestReplaceKeepsMode(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "taskfleet.toml")
	if err := Replace(name, []byte("a"), 0o640); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(name); fi.Mode().Perm() != 0o640 {
		t.Errorf("new file mode %v, want 0640", fi.Mode())
	}
	if err := os.Chmod(name, 0o604); err != nil {
		t.Fatal(err)
	}
	if err := Replace(name, []byte("b"), 0o640); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(name); fi.Mode().Perm() != 0o604 {
		t.Errorf("mode %v after a rewrite, want the file's 0604", fi.Mode())
	}
	if got, _ := os.ReadFile(name); string(got) != "b" {
		t.Errorf("content %q, want b", got)
	}
	onlyTarget(t, dir, "taskfleet.toml")
}

// TestReplaceKeepsOwner: a file edited by root (sudo taskfleet remote add)
// stays root:taskfleet, so the service can still read it.
func TestReplaceKeepsOwner(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() != 0 {
		t.Skip("needs root to give the file another owner (run the test as root)")
	}
	name := filepath.Join(t.TempDir(), "taskfleet.toml")
	if err := os.WriteFile(name, []byte("a"), 0o640); err != nil {
		t.Fatal(err)
	}
	const uid, gid = 4321, 8765
	if err := os.Chown(name, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := Replace(name, []byte("b"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != uid || st.Gid != gid || fi.Mode().Perm() != 0o640 {
		t.Errorf("after Replace: %d:%d %v, want %d:%d 0640", st.Uid, st.Gid, fi.Mode().Perm(), uid, gid)
	}
}

func TestWriteFileFails(t *testing.T) {
	dir := t.TempDir()
	// The target is a directory: the rename fails, and no temporary file
	// stays.
	name := filepath.Join(dir, "sub")
	if err := os.Mkdir(name, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(name, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(name, []byte("x"), 0o600); err == nil {
		t.Fatal("writing over a non-empty directory succeeded")
	}
	onlyTarget(t, dir, "sub")
	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o600); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"api-key.pem", ".api-key.pem.tmp-123", ".api-key.pem.tmp-9", ".api-cert.pem.tmp-1", "other.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveTemps(filepath.Join(dir, "api-key.pem")); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if want := []string{".api-cert.pem.tmp-1", "api-key.pem", "other.tmp"}; !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}
