package actors

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// TestBackupStateFile: the keeper's file round-trips, drops logs beyond
// the retention on reading, and each kind of damage is an error naming
// the file (the keeper then starts afresh and fetches the logs again).
func TestBackupStateFile(t *testing.T) {
	const upid = "UPID:pve1:00001000:00A00000:66000500:vzdump::root@pam:"
	const old = "UPID:pve1:00001000:00A00000:50000000:vzdump::root@pam:"
	dir := t.TempDir()
	good := filepath.Join(dir, "east.json")
	if err := os.WriteFile(good, []byte(`{"version":1,"remote":"east","guests_at":5,"guests":[{"vmid":"100","type":"qemu"}],
		"logs":{"`+upid+`":{"guests":[{"vmid":"100","ok":true}]},"`+old+`":{"guests":[]}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	st := &backupState{Remote: "east"}
	u, _ := task.ParsePVE(upid)
	if err := st.read(good, u.StartTime); err != nil {
		t.Fatal(err)
	}
	if len(st.Logs) != 1 || st.Logs[u] == nil || !st.Logs[u].Guests[0].OK || st.GuestsAt != 5 || len(st.Guests) != 1 || st.Guests[0].VMID != 100 {
		t.Errorf("read %+v", st)
	}

	for _, tc := range []struct {
		name, content, want string
	}{
		{"not_json", `{"version":1,`, "unexpected end of JSON"},
		{"other_version", `{"version":2,"remote":"east"}`, "version 2"},
		{"other_remote", `{"version":1,"remote":"west"}`, `remote "west"`},
		{"bad_upid", `{"version":1,"remote":"east","logs":{"UPID:nonsense":{"guests":[]}}}`, `invalid upid "UPID:nonsense"`},
		{"pbs_upid", `{"version":1,"remote":"east","logs":{"UPID:pbs:00000100:00000200:00000001:66000400:garbage_collection:store1:root@pam:":{"guests":[]}}}`, "not a PVE UPID"},
		{"bad_vmid", `{"version":1,"remote":"east","guests":[{"vmid":"x1","type":"qemu"}]}`, "x1"},
		{"null_log", `{"version":1,"remote":"east","logs":{"` + upid + `":null}}`, "no log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "east.json")
			if err := os.WriteFile(name, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			err := (&backupState{Remote: "east"}).read(name, 0)
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %s and %q", err, name, tc.want)
			}
		})
	}
	if err := (&backupState{Remote: "east"}).read(filepath.Join(dir, "none.json"), 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestBackgroundLogSlot: the backup keeper's log fetches have a slot of
// their own: with the API's maxLogFetches slots busy, one background
// fetch still goes; a second one at once is refused.
func TestBackgroundLogSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, sim.Config{Seed: 9, PVEClusters: 1, NodesPerCluster: 1, TaskRate: 1, IndexSize: 50}, Options{})
		h.start()
		drainBackupLogs(t, h)
		r := h.fleet.Remotes()[0]
		u := h.fleet.StartTask(r.ID, r.Endpoints[0].Node, "qmigrate", "100", time.Hour)
		h.fleet.SetFaultAll(sim.Fault{Latency: 10 * time.Second})
		var wg sync.WaitGroup
		errs := make([]error, maxLogFetches+2)
		for i := range errs {
			wg.Go(func() {
				if i < maxLogFetches {
					_, _, _, errs[i] = h.sys.TaskLog(context.Background(), r.ID, u, 0, 0)
				} else {
					_, errs[i] = h.sys.wholeLog(context.Background(), r.ID, u, true)
				}
			})
			synctest.Wait()
		}
		wg.Wait()
		for i, err := range errs {
			if want := i == len(errs)-1; errors.Is(err, ErrLogBusy) != want || !want && err != nil {
				t.Errorf("fetch %d: %v", i, err)
			}
		}
		h.stop()
	})
}
