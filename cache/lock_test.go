package cache

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// TestOneWriterPerDirectory checks the directory lock: a second Open of a
// directory in use fails with a *LockedError naming the directory and the
// holder's pid, and the directory opens again once the first Writer is
// closed or abandoned.
func TestOneWriterPerDirectory(t *testing.T) {
	dir := t.TempDir()
	clock := newClock(t0)
	first := openTest(t, dir, clock)

	_, err := Open(Options{Dir: dir, Now: clock.Now, Rotation: time.Hour, Retention: 4})
	if err == nil {
		t.Fatal("second Open of a directory in use succeeded")
	}
	var le *LockedError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &le) {
		t.Fatalf("second Open: %v, want a *LockedError", err)
	}
	pid := strconv.Itoa(os.Getpid())
	if le.Dir != dir || le.PID != os.Getpid() || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "process "+pid) {
		t.Fatalf("second Open: %v (dir %q pid %d), want the directory %s and pid %s", err, le.Dir, le.PID, dir, pid)
	}
	// The failed Open changed nothing: the first Writer still works.
	if err := first.Apply(Batch{Remote: "r1", Tasks: []task.Task{pveTask("r1", "n1", 1, t0-60, "vzdump", "100", "root@pam", t0-30, "OK")}}); err != nil {
		t.Fatalf("Apply after a refused second Open: %v", err)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := openTest(t, dir, clock)
	if n := second.Latest().Load().Len(); n != 1 {
		t.Fatalf("reopened cache holds %d tasks, want 1", n)
	}
	if err := second.Abandon(); err != nil {
		t.Fatal(err)
	}
	third := openTest(t, dir, clock) // Abandon released the lock too
	if err := third.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestParseLockPID(t *testing.T) {
	for in, want := range map[string]int{"123\n": 123, "": 0, "x": 0, "-4": 0, " 77 ": 77} {
		if got := parseLockPID([]byte(in)); got != want {
			t.Errorf("parseLockPID(%q) = %d, want %d", in, got, want)
		}
	}
}
