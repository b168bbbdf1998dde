package tasklogs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func upid(pid uint32, start time.Time) task.UPID {
	return task.UPID{Kind: task.PVE, Node: "pve1", PID: pid, PStart: 1, StartTime: start.Unix(), Type: "vzdump", ID: "100", User: "root@pam"}
}

func TestStoreKeepsAndDropsWithPeriod(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	s, err := Open(Options{Dir: t.TempDir(), Retention: 3, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	old, today := upid(1, c.t.Add(-48*time.Hour)), upid(2, c.t)
	for _, u := range []task.UPID{old, today} {
		if err := s.Put("east", u, []string{"INFO: x", "TASK ERROR: job errors"}); err != nil {
			t.Fatal(err)
		}
	}
	if lines, ok, err := s.Get("east", old); !ok || err != nil || lines[1] != "TASK ERROR: job errors" {
		t.Fatalf("Get: %v %v %v", lines, ok, err)
	}
	if _, ok, _ := s.Get("west", old); ok {
		t.Error("a log of another remote")
	}
	// A day later the oldest period leaves the retention, and its logs go.
	c.t = c.t.Add(24 * time.Hour)
	if err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get("east", old); ok {
		t.Error("the log of an expired period is still kept")
	}
	if _, ok, _ := s.Get("east", today); !ok {
		t.Error("today's log is gone")
	}
	// A log older than the retention is not kept at all.
	if err := s.Put("east", upid(3, c.t.Add(-72*time.Hour)), []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get("east", upid(3, c.t.Add(-72*time.Hour))); ok {
		t.Error("a log older than the retention was kept")
	}
}

func TestStoreBounds(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	big, err := Open(Options{Dir: t.TempDir(), Retention: 7, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	// One huge log keeps its first lines and a note.
	huge := make([]string, 2*MaxLogLines)
	for i := range huge {
		huge[i] = fmt.Sprintf("line %d", i)
	}
	if err := big.Put("east", upid(1, c.t), huge); err != nil {
		t.Fatal(err)
	}
	lines, ok, _ := big.Get("east", upid(1, c.t))
	if !ok || len(lines) != MaxLogLines+1 || !strings.Contains(lines[MaxLogLines], "5000 more lines not kept") {
		t.Fatalf("huge log: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	// Beyond MaxBytes the oldest logs go first.
	s, err := Open(Options{Dir: dir, Retention: 7, MaxBytes: 20 << 10, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		start := c.t.Add(-time.Duration(40-i) * time.Hour)
		if err := s.Put("east", upid(uint32(10+i), start), []string{strings.Repeat("x", 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, _ error) error {
		if !info.IsDir() {
			total += info.Size()
		}
		return nil
	})
	if total > 20<<10 {
		t.Errorf("%d bytes kept, want at most %d", total, 20<<10)
	}
	if _, ok, _ := s.Get("east", upid(49, c.t.Add(-time.Hour))); !ok {
		t.Error("the newest log was pruned")
	}
	if _, ok, _ := s.Get("east", upid(10, c.t.Add(-40*time.Hour))); ok {
		t.Error("the oldest log was kept beyond MaxBytes")
	}
}

func TestStoreDamagedFile(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	s, err := Open(Options{Dir: t.TempDir(), Retention: 7, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	u := upid(1, c.t)
	if err := s.Put("east", u, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.path("east", u), []byte(`{"remote":"east","upid":"UPID:other`), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Get("east", u); ok || err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged file: ok %v err %v", ok, err)
	}
	if _, err := Open(Options{Dir: t.TempDir()}); err == nil {
		t.Error("Open without a retention succeeded")
	}
}
