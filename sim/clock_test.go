package sim

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestClockStep runs a cluster's clock two hours ahead and then steps it
// back: tasks keep the times they were written with, the tasks started
// after the step have start times below those started before it, lists
// filter by the written times, the status of a task started while the
// clock was ahead is found, and the Date header follows the clock.
func TestClockStep(t *testing.T) {
	runInBubble(t, Config{Seed: 41, PVEClusters: 1, TaskRate: 300, History: time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		const remote, node = "pve-c001", "pve-c001-n1"
		if err := f.SetClockOffset(remote, 2*time.Hour); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		r := c.get(remote, node, "/api2/json/version")
		date, err := http.ParseTime(r.header.Get("Date"))
		if err != nil || date.Sub(time.Now()).Round(time.Second) != 2*time.Hour {
			t.Fatalf("Date %q (%v) with the clock two hours ahead, now %v", r.header.Get("Date"), err, time.Now())
		}
		time.Sleep(30 * time.Minute)
		ahead := time.Now().Unix()
		var newestAhead int64
		for _, it := range c.fetchAll(remote, node, 500, "") {
			tk := it.toTask(t, remote)
			newestAhead = max(newestAhead, tk.UPID.StartTime)
		}
		if newestAhead <= ahead+3600 {
			t.Fatalf("newest start %d while two hours ahead, fleet time %d", newestAhead, ahead)
		}
		if err := f.SetClockOffset(remote, 0); err != nil {
			t.Fatal(err)
		}
		step := time.Now().Unix()
		time.Sleep(20 * time.Minute)
		var after int
		since := c.fetchAll(remote, node, 500, "&"+q("since", "0"))
		for _, it := range since {
			tk := it.toTask(t, remote)
			if tk.UPID.StartTime > step && tk.UPID.StartTime < newestAhead {
				after++
			}
		}
		if after == 0 {
			t.Error("no task started after the step, below the times written while ahead")
		}
		beyond := c.fetchAll(remote, node, 500, "&"+q("since", strconv.FormatInt(newestAhead-60, 10)))
		for _, it := range beyond {
			if tk := it.toTask(t, remote); tk.UPID.StartTime < newestAhead-60 {
				t.Errorf("since filtered by fleet time: %s", tk.UPID)
			}
		}
		var early string
		for _, tk := range f.Truth(remote) {
			if tk.UPID.Node == node && tk.UPID.StartTime > ahead+3600 && !tk.Running() {
				early = tk.UPID.String()
				break
			}
		}
		if early == "" {
			t.Fatal("no finished task of the two hours ahead in the truth")
		}
		if r := c.get(remote, node, "/api2/json/nodes/"+node+"/tasks/"+early+"/status"); r.status != http.StatusOK {
			t.Errorf("status of %s: %d %s", early, r.status, r.body)
		}
		t.Logf("%d tasks started after the step below the newest start written ahead", after)
	})
}
