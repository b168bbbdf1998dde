package backups

import (
	"slices"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

func TestParseBackupWorkerID(t *testing.T) {
	tests := []struct {
		id   string
		want BackupGroup
		err  string
	}{
		{id: "store1:vm/100", want: BackupGroup{Store: "store1", Type: "vm", ID: "100"}},
		{id: "store1:ct/200", want: BackupGroup{Store: "store1", Type: "ct", ID: "200"}},
		{id: "PBSHOST:host/web-1.example", want: BackupGroup{Store: "PBSHOST", Type: "host", ID: "web-1.example"}},
		{id: "store1:ns/a/ns/b/vm/100", want: BackupGroup{Store: "store1", Namespace: "ns/a/ns/b", Type: "vm", ID: "100"}},
		{id: "store1", err: "want <store>:<type>/<id>"},
		{id: ":vm/100", err: "want <store>:<type>/<id>"},
		{id: "store1:vm", err: "want <type>/<id>"},
		{id: "store1:disk/100", err: `backup type "disk"`},
		{id: "store1:vm/", err: "no backup id"},
		{id: "store1:x/vm/100", err: "not ns/<name> pairs"},
	}
	for _, tc := range tests {
		got, err := ParseBackupWorkerID(tc.id)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.id)):
			t.Errorf("%q: err = %v, want one naming the id and %q", tc.id, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: got %+v, %v; want %+v", tc.id, got, err, tc.want)
		}
	}
}

// TestParseBackupWorkerIDEscaped: the worker id of a real PBS UPID
// (escaped as PBS does) parses once the UPID parser has unescaped it.
func TestParseBackupWorkerIDEscaped(t *testing.T) {
	u, err := task.ParsePBS(`UPID:pbshost:00000624:0000652A:000005B1:67106DB7:backup:PBSHOST\x3avm-903:root@pam:`)
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParseBackupWorkerID(u.ID)
	if err != nil || g != (BackupGroup{Store: "PBSHOST", Type: "vm", ID: "903"}) {
		t.Fatalf("got %+v, %v", g, err)
	}
	esc := task.EscapeWorkerID("store-a:ns/x/ct/105")
	back, err := task.UnescapeWorkerID(esc)
	if err != nil {
		t.Fatal(err)
	}
	if g, err := ParseBackupWorkerID(back); err != nil || g != (BackupGroup{Store: "store-a", Namespace: "ns/x", Type: "ct", ID: "105"}) {
		t.Fatalf("%s: got %+v, %v", esc, g, err)
	}
}

func TestPBSJob(t *testing.T) {
	tests := []struct {
		typ, id    string
		job, store string
		notAJob    bool
	}{
		{typ: "verificationjob", id: "store1:v-3fa1b2c4-0001", job: JobVerify, store: "store1"},
		{typ: "verify", id: "store1", notAJob: true},
		{typ: "syncjob", id: "pbs-offsite:offsite:store1:s-12345678-abcd", job: JobSync, store: "store1"},
		{typ: "syncjob", id: "r:rs:store2::ns:s-1", job: JobSync, store: "store2"},
		{typ: "sync", id: "store3", notAJob: true},
		{typ: "prunejob", id: "store1:ns1", job: JobPrune, store: "store1"},
		{typ: "prunejob", id: "store1", job: JobPrune, store: "store1"},
		{typ: "garbage_collection", id: "store1", job: JobGC, store: "store1"},
		{typ: "garbage_collection", id: "", job: JobGC, store: ""},
		{typ: "prune", id: "store1:vm/100", notAJob: true},
		{typ: "verify_snapshot", id: "store1:vm/100/6710", notAJob: true},
		{typ: "backup", id: "store1:vm/100", notAJob: true},
	}
	for _, tc := range tests {
		job, store, ok := PBSJob(task.UPID{Kind: task.PBS, Type: tc.typ, ID: tc.id})
		if ok == tc.notAJob || job != tc.job || store != tc.store {
			t.Errorf("%s %q: got %q %q %v, want %q %q", tc.typ, tc.id, job, store, ok, tc.job, tc.store)
		}
	}
}

func TestSucceeded(t *testing.T) {
	tests := []struct {
		job, status string
		want        bool
	}{
		{jobBackup, "OK", true},
		{jobBackup, "WARNINGS: 1", true},
		{jobBackup, "job errors", false},
		{jobBackup, "unknown", false},
		{jobBackup, "", false},
		{JobSync, "OK", true},
		{JobSync, "WARNINGS: 2", false}, // something was not copied
		{JobVerify, "WARNINGS: 1", true},
		{JobPrune, "WARNINGS: 1", true},
		{JobGC, "WARNINGS: 1", true},
		{JobGC, "task aborted", false},
		{jobBackup, "unexpected status", false},
	}
	for _, tc := range tests {
		if got := Succeeded(tc.job, tc.status); got != tc.want {
			t.Errorf("Succeeded(%s, %q) = %v", tc.job, tc.status, got)
		}
	}
}

// TestPBSWorkerTypes: the worker types the keeper streams are the
// guests' backups and exactly the types PBSJob classifies.
func TestPBSWorkerTypes(t *testing.T) {
	want := []string{"backup", "garbage_collection", "prunejob", "syncjob", "verificationjob"}
	if got := PBSWorkerTypes(); !slices.Equal(got, want) {
		t.Errorf("PBSWorkerTypes() = %v, want %v", got, want)
	}
	for _, typ := range PBSWorkerTypes() {
		if _, _, ok := PBSJob(task.UPID{Kind: task.PBS, Type: typ, ID: "store1"}); ok == (typ == "backup") {
			t.Errorf("PBSJob of %q: ok = %v", typ, ok)
		}
	}
}
