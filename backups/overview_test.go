package backups

import (
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

func pveTask(node string, start, end int64, id, status string) task.Task {
	return task.Task{Remote: "pve", UPID: task.UPID{Kind: task.PVE, Node: node, PID: 1, StartTime: start, Type: "vzdump", ID: id, User: "root@pam"}, EndTime: end, Status: status}
}

func pbsTask(typ, id string, start, end int64, status string) task.Task {
	return task.Task{Remote: "pbs", UPID: task.UPID{Kind: task.PBS, Node: "pbs1", PID: 1, StartTime: start, Type: typ, ID: id, User: "root@pam"}, EndTime: end, Status: status}
}

func TestBuildPVE(t *testing.T) {
	job := pveTask("pve1", jobStart, jobStart+200, "", "job errors")
	pending := pveTask("pve2", jobStart+10, jobStart+300, "", "OK")
	running := pveTask("pve1", jobStart+500, 0, "102", "")
	tasks := []task.Task{
		pveTask("pve1", jobStart-86400, jobStart-86000, "101", "OK"), // 101's last good backup, the night before
		pveTask("pve1", jobStart-86400, jobStart-86300, "100", "WARNINGS: 1"),
		job, pending, running,
		pveTask("pve2", jobStart+20, jobStart+40, "200", "unknown"),
		pveTask("pve2", jobStart+20, jobStart+40, "bogus", "OK"), // not a vmid: ignored
	}
	jl, err := ParseVzdumpLog(jobLog, jobStart)
	if err != nil {
		t.Fatal(err)
	}
	p := Build(Input{Remote: "pve", Kind: task.PVE, Tasks: tasks, Logs: map[task.UPID]*JobLog{job.UPID: &jl},
		Guests: []GuestInfo{
			{VMID: 100, Type: "qemu", Name: "web", Node: "pve1"},
			{VMID: 101, Type: "lxc", Name: "db", Node: "pve3"}, // migrated since
			{VMID: 300, Type: "qemu", Name: "never", Node: "pve2"},
			{VMID: 0, Type: "qemu"}, // not a guest: ignored
		}})
	if p.PendingLogs != 1 {
		t.Errorf("pending logs = %d, want 1", p.PendingLogs)
	}
	want := []Guest{
		{Remote: "pve", Node: "pve1", VMID: "100", Type: "qemu", Name: "web", Listed: true, Class: "ok", LastStatus: "OK",
			LastStart: jobStart, LastEnd: jobStart + 200, LastUPID: job.UPID.String(), Storage: "pbs-1", LastOKStart: jobStart, LastOK: jobStart + 200, LastOKUPID: job.UPID.String()},
		{Remote: "pve", Node: "pve3", VMID: "101", Type: "lxc", Name: "db", Listed: true, Class: "error", LastStatus: "job failed with err -5 - Input/output error",
			LastStart: jobStart, LastEnd: jobStart + 200, LastUPID: job.UPID.String(), Storage: "pbs-1", LastOKStart: jobStart - 86400, LastOK: jobStart - 86000, LastOKUPID: tasks[0].UPID.String()},
		{Remote: "pve", Node: "pve2", VMID: "200", Class: "unknown", LastStatus: "unknown", LastStart: jobStart + 20, LastEnd: jobStart + 40, LastUPID: tasks[5].UPID.String()},
		{Remote: "pve", Node: "pve2", VMID: "300", Type: "qemu", Name: "never", Listed: true, Class: "none"},
	}
	if len(p.Guests()) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(p.Guests()), len(want), p.Guests())
	}
	for i := range want {
		if p.Guests()[i] != want[i] {
			t.Errorf("row %d:\n got  %+v\n want %+v", i, p.Guests()[i], want[i])
		}
	}

	o := New(time.Unix(jobStart+1000, 0), p)
	now := time.Unix(jobStart+3600, 0)
	order := func(rows []Row) (ids []string) {
		for _, r := range rows {
			ids = append(ids, r.VMID)
		}
		return ids
	}
	for _, tc := range []struct {
		name string
		q    Query
		want []string
	}{
		{"all, failing and stale first", Query{}, []string{"101", "200", "300", "100"}},
		{"errors", Query{Classes: []string{"ERROR"}}, []string{"101"}},
		{"never backed up", Query{Classes: []string{"none"}}, []string{"300"}},
		{"no good backup for 2h", Query{OlderThan: 2 * time.Hour}, []string{"101", "200", "300"}},
		{"no good backup for 30h", Query{OlderThan: 30 * time.Hour}, []string{"200", "300"}},
		{"other remote", Query{Remote: "pve9"}, nil},
		{"out of scope", Query{Scope: map[string]bool{"pbs": true}}, nil},
	} {
		if got := order(o.Guests(tc.q, now)); !equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if r := o.Guests(Query{Classes: []string{"ok"}}, now); len(r) != 1 || r[0].AgeSeconds != 3600-200 {
		t.Errorf("age of 100's good backup: %+v", r)
	}
	if g := p.Guests()[2]; g.Current() || g.IsPBS() || !p.Guests()[0].Current() {
		t.Errorf("200 (not listed) is current, or 100 (listed) is not")
	}
	if o.PendingLogs()["pve"] != 1 {
		t.Errorf("pending = %v", o.PendingLogs())
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBuildPBS(t *testing.T) {
	tasks := []task.Task{
		pbsTask("backup", "store1:vm/100", 100, 200, "OK"),
		pbsTask("backup", "store1:vm/100", 1000, 1100, "backup ended and finish failed"),
		pbsTask("backup", "store1:ns/dev/ct/200", 100, 150, "WARNINGS: 1"),
		pbsTask("backup", "store1:vm", 100, 150, "OK"), // malformed: ignored
		pbsTask("syncjob", "off:remote:store1:s-1", 100, 200, "OK"),
		pbsTask("syncjob", "off:remote:store1:s-1", 1000, 1200, "WARNINGS: 3"),
		pbsTask("garbage_collection", "store1", 500, 600, "WARNINGS: 1"),
		pbsTask("verificationjob", "store1:v-1", 700, 800, "verification failed - please check the log for details"),
		pbsTask("prunejob", "store1", 50, 60, "OK"),
		pbsTask("prune", "store1:vm/100", 50, 60, "OK"), // a group's prune, not a job
	}
	p := Build(Input{Remote: "pbs", Kind: task.PBS, Tasks: tasks})
	if len(p.Guests()) != 2 {
		t.Fatalf("rows: %+v", p.Guests())
	}
	if g := p.Guests()[0]; g.Namespace != "" || g.VMID != "100" || g.Type != "vm" || g.Class != "error" || g.LastOK != 200 || g.Storage != "store1" || g.LastStart != 1000 {
		t.Errorf("vm/100: %+v", g)
	}
	if g := p.Guests()[0]; !g.IsPBS() || !g.Current() {
		t.Errorf("a PBS group is not PBS or not current: %+v", g)
	}
	if g := p.Guests()[1]; g.Namespace != "ns/dev" || g.VMID != "200" || g.Type != "ct" || g.Class != "warning" || g.LastOK != 150 || g.Storage != "store1:ns/dev" {
		t.Errorf("ct/200: %+v", g)
	}
	type jk struct{ store, typ string }
	jobs := map[jk]Job{}
	for _, j := range p.Jobs {
		jobs[jk{j.Datastore, j.Type}] = j
	}
	if len(jobs) != 4 {
		t.Fatalf("jobs: %+v", p.Jobs)
	}
	if j := jobs[jk{"store1", JobSync}]; j.Succeeded || j.Class != "warning" || j.LastOK != 200 || j.LastStart != 1000 {
		t.Errorf("sync with warnings: %+v", j)
	}
	if j := jobs[jk{"store1", JobGC}]; !j.Succeeded || j.LastOK != 600 {
		t.Errorf("gc with warnings: %+v", j)
	}
	if j := jobs[jk{"store1", JobVerify}]; j.Succeeded || j.Class != "error" || j.LastOK != 0 {
		t.Errorf("failed verify: %+v", j)
	}
	o := New(time.Unix(2000, 0), p)
	got := o.Jobs(Query{}, time.Unix(2000, 0))
	if len(got) != 4 || got[0].Type != JobVerify || got[1].Type != JobSync {
		t.Errorf("jobs not failing first: %+v", got)
	}
}

func TestQueryValidate(t *testing.T) {
	if err := (&Query{Classes: []string{"ok", "stale"}}).Validate(); err == nil {
		t.Error("class stale accepted")
	}
	if err := (&Query{OlderThan: -time.Hour}).Validate(); err == nil {
		t.Error("negative older_than accepted")
	}
	if err := (&Query{Classes: []string{"None", "error"}, OlderThan: time.Hour}).Validate(); err != nil {
		t.Error(err)
	}
}
