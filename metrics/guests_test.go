package metrics

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/taskfleet/taskfleet/config"
)

func TestGuestBackups(t *testing.T) {
	rows := []GuestBackup{
		{Remote: "east", Node: "n1", VMID: "100", GuestType: "qemu", LastOK: 1700000000, LastAttempt: 1700000000},
		{Remote: "east", Node: "n1", VMID: "101", GuestType: "lxc", LastOK: 1690000000, LastAttempt: 1700000100}, // last attempt failed
		{Remote: "east", Node: "n2", VMID: "102", GuestType: "qemu"},                                             // never backed up
		{Remote: "pbs1", VMID: "100", GuestType: "vm", LastOK: 1700000050, LastAttempt: 1700000050},
		{Remote: "east", Node: "n1", VMID: "100", GuestType: "qemu", LastOK: 1600000000, LastAttempt: 1600000000}, // stale duplicate
		{Remote: "east", Node: "n\xff", VMID: "103", GuestType: "qemu"},                                           // not UTF-8
	}
	before := fmt.Sprint(rows)
	reg := prometheus.NewPedanticRegistry()
	g := NewGuestBackups(3, func() []GuestBackup { return rows })
	reg.MustRegister(g)
	// Cap 3 of 4 valid guests: the one with the newest last success
	// (pbs1/100) is left out.
	want := `
# HELP taskfleet_guest_backup_last_attempt_timestamp_seconds Unix time the guest's last finished backup attempt ended, successful or not; 0: none.
# TYPE taskfleet_guest_backup_last_attempt_timestamp_seconds gauge
taskfleet_guest_backup_last_attempt_timestamp_seconds{guest_type="lxc",node="n1",remote="east",vmid="101"} 1.7000001e+09
taskfleet_guest_backup_last_attempt_timestamp_seconds{guest_type="qemu",node="n2",remote="east",vmid="102"} 0
taskfleet_guest_backup_last_attempt_timestamp_seconds{guest_type="qemu",node="n1",remote="east",vmid="100"} 1.7e+09
# HELP taskfleet_guest_backup_last_success_timestamp_seconds Unix time the guest's last successful backup ended; 0: none in the cache's retention.
# TYPE taskfleet_guest_backup_last_success_timestamp_seconds gauge
taskfleet_guest_backup_last_success_timestamp_seconds{guest_type="lxc",node="n1",remote="east",vmid="101"} 1.69e+09
taskfleet_guest_backup_last_success_timestamp_seconds{guest_type="qemu",node="n2",remote="east",vmid="102"} 0
taskfleet_guest_backup_last_success_timestamp_seconds{guest_type="qemu",node="n1",remote="east",vmid="100"} 1.7e+09
# HELP taskfleet_guest_backups_omitted_total Guest rows left out of the per-guest backup metrics, summed over scrapes: past max_guests (cap), a guest twice (duplicate), label values not UTF-8 (invalid).
# TYPE taskfleet_guest_backups_omitted_total counter
taskfleet_guest_backups_omitted_total{reason="cap"} 1
taskfleet_guest_backups_omitted_total{reason="duplicate"} 1
taskfleet_guest_backups_omitted_total{reason="invalid"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if after := fmt.Sprint(rows); after != before {
		t.Errorf("the collector changed its source's rows:\n%s\nwas\n%s", after, before)
	}
	// Without the cap every valid guest is there, the duplicate with its
	// newest success.
	reg2 := prometheus.NewRegistry()
	reg2.MustRegister(NewGuestBackups(0, func() []GuestBackup { return rows }))
	if n, err := testutil.GatherAndCount(reg2, "taskfleet_guest_backup_last_success_timestamp_seconds"); err != nil || n != 4 {
		t.Errorf("uncapped: %d series (%v), want 4", n, err)
	}
	problems, err := testutil.GatherAndLint(reg2)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
	reg3 := prometheus.NewRegistry()
	reg3.MustRegister(NewGuestBackups(10, nil))
	if n, err := testutil.GatherAndCount(reg3, "taskfleet_guest_backup_last_success_timestamp_seconds"); err != nil || n != 0 {
		t.Errorf("without a source: %d series (%v), want 0", n, err)
	}
}

// BenchmarkGuestBackups is one scrape of the default bound of guests.
func BenchmarkGuestBackups(b *testing.B) {
	rows := make([]GuestBackup, config.DefaultMaxGuests)
	for i := range rows {
		rows[i] = GuestBackup{Remote: fmt.Sprintf("r%02d", i%50), Node: fmt.Sprintf("n%d", i%7), VMID: fmt.Sprint(100 + i),
			GuestType: "qemu", LastOK: int64(1700000000 + i*37%86400), LastAttempt: int64(1700000000 + i)}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewGuestBackups(0, func() []GuestBackup { return rows }))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
