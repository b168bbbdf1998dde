package backups

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// jobLog is a two-guest vzdump job as PVE logs it: 100 backed up, 101
// failed. The node's clock is UTC+1.
var jobLog = []string{
	"INFO: starting new backup job: vzdump --all 1 --mode snapshot --storage pbs-1 --notes-template '{{guestname}}' --node pve1",
	"INFO: Starting Backup of VM 100 (qemu)",
	"INFO: Backup started at 2026-12-03 02:00:05",
	"INFO: status = running",
	"INFO: creating Proxmox Backup Server archive 'vm/100/2026-12-03T01:00:05Z'",
	"INFO:  40% (4.0 GiB of 10.0 GiB) in 10s, read: 409.6 MiB/s, write: 90.1 MiB/s",
	"INFO: Finished Backup of VM 100 (00:01:23)",
	"INFO: Backup finished at 2026-12-03 02:01:28",
	"INFO: Starting Backup of VM 101 (lxc)",
	"INFO: Backup started at 2026-12-03 02:01:29",
	"ERROR: Backup of VM 101 failed - job failed with err -5 - Input/output error",
	"INFO: Failed at 2026-12-03 02:02:00",
	"INFO: Backup job finished with errors",
	"TASK ERROR: job errors",
}

const jobStart = 1796259600 // 2026-12-03T01:00:00Z

func TestParseVzdumpLog(t *testing.T) {
	tests := []struct {
		name      string
		lines     []string
		want      JobLog
		malformed int
		err       error
	}{
		{
			name:  "two guests, one failed, node in UTC+1",
			lines: jobLog,
			want: JobLog{Storage: "pbs-1", Ended: true, Guests: []GuestResult{
				{VMID: "100", Type: "qemu", OK: true, Start: jobStart + 5, End: jobStart + 88, Duration: 83},
				{VMID: "101", Type: "lxc", Error: "job failed with err -5 - Input/output error", Start: jobStart + 89, End: jobStart + 120},
			}},
		},
		{
			name: "vzdump's own log file: time stamps before each line",
			lines: []string{
				"2026-12-03 01:00:01 INFO: Starting Backup of VM 200 (qemu)",
				"2026-12-03 01:00:01 INFO: Backup started at 2026-12-03 01:00:01",
				"2026-12-03 01:00:42 INFO: Finished Backup of VM 200 (00:00:41)",
			},
			want: JobLog{Guests: []GuestResult{{VMID: "200", Type: "qemu", OK: true, Start: jobStart + 1, Duration: 41}}},
		},
		{
			name: "more inside the duration's parentheses, long hours",
			lines: []string{
				"INFO: Starting Backup of VM 300 (qemu)",
				"INFO: Finished Backup of VM 300 (123:00:01, something)",
				"INFO: Backup job finished successfully",
			},
			want: JobLog{Ended: true, Guests: []GuestResult{{VMID: "300", Type: "qemu", OK: true, Duration: 123*3600 + 1}}},
		},
		{
			name: "killed mid-guest: neither finished nor failed",
			lines: []string{
				"INFO: Starting Backup of VM 100 (qemu)",
				"INFO: Finished Backup of VM 100 (00:00:10)",
				"INFO: Starting Backup of VM 101 (qemu)",
				"INFO:  10% (1.0 GiB of 10.0 GiB) in 3s",
			},
			want: JobLog{Guests: []GuestResult{{VMID: "100", Type: "qemu", OK: true, Duration: 10}, {VMID: "101", Type: "qemu"}}},
		},
		{
			name:  "failure of a guest that never started (no config)",
			lines: []string{"ERROR: Backup of VM 105 failed - unable to find VM '105'"},
			want:  JobLog{Guests: []GuestResult{{VMID: "105", Error: "unable to find VM '105'"}}},
		},
		{
			name:  "the node no longer has the log",
			lines: []string{"unable to open file - No such file or directory"},
			want:  JobLog{Unavailable: true},
		},
		{
			name:  "no lines",
			lines: nil,
			err:   ErrEmptyLog,
		},
		{
			name: "malformed guest lines are skipped and counted",
			lines: []string{
				"INFO: Starting Backup of VM ",
				"INFO: Starting Backup of VM abc (qemu)",
				"INFO: Backup started at 2026-12-03 01:00:05",
				"INFO: Finished Backup of VM 0100 (00:00:01)",
				"ERROR: Backup of VM 101 is broken",
				"INFO: Starting Backup of VM 102 (qemu)",
				"INFO: Backup started at yesterday",
				"INFO: Finished Backup of VM 102 (xx:yy)",
			},
			want:      JobLog{Guests: []GuestResult{{VMID: "102", Type: "qemu", OK: true}}},
			malformed: 6,
		},
		{
			name: "wall-clock times far from the task's start are dropped",
			lines: []string{
				"INFO: Starting Backup of VM 100 (qemu)",
				"INFO: Backup started at 2020-01-01 00:00:00",
				"INFO: Finished Backup of VM 100 (00:00:02)",
			},
			want: JobLog{Guests: []GuestResult{{VMID: "100", Type: "qemu", OK: true, Duration: 2}}},
		},
		{
			name: "warnings belong to the guest before them, up to the job's end",
			lines: []string{
				"INFO: Starting Backup of VM 100 (qemu)",
				"INFO: Finished Backup of VM 100 (00:00:05)",
				"WARN: uploading backup task log failed: command '/usr/bin/proxmox-backup-client upload-log' failed: exit code 255",
				"INFO: Starting Backup of VM 101 (lxc)",
				"WARN: unable to add notes - Permission denied",
				"INFO: Finished Backup of VM 101 (00:00:06)",
				"INFO: Starting Backup of VM 102 (qemu)",
				"ERROR: Backup job failed - interrupted by signal",
				"WARN: after the job",
			},
			want: JobLog{Ended: true, Guests: []GuestResult{
				{VMID: "100", Type: "qemu", OK: true, Duration: 5, Warnings: 1},
				{VMID: "101", Type: "lxc", OK: true, Duration: 6, Warnings: 1},
				{VMID: "102", Type: "qemu"},
			}},
		},
		{
			name: "a guest retried later in the log: the last outcome wins",
			lines: []string{
				"INFO: Starting Backup of VM 100 (qemu)",
				"ERROR: Backup of VM 100 failed - got timeout",
				"INFO: Starting Backup of VM 100 (qemu)",
				"INFO: Finished Backup of VM 100 (00:00:05)",
			},
			want: JobLog{Guests: []GuestResult{{VMID: "100", Type: "qemu", OK: true, Duration: 5}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseVzdumpLog(tc.lines, jobStart)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got.Malformed != tc.malformed || len(got.LineErrors) != min(tc.malformed, MaxLineErrors) {
				t.Errorf("malformed = %d (%v), want %d", got.Malformed, got.LineErrors, tc.malformed)
			}
			for _, le := range got.LineErrors {
				if le.Line < 1 || le.Line > len(tc.lines) || le.Reason == "" || !strings.Contains(le.Error(), "line") {
					t.Errorf("line error %+v does not name its line and reason", le)
				}
			}
			got.Malformed, got.LineErrors = 0, nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestGuestResultStatus(t *testing.T) {
	for _, tc := range []struct {
		g    GuestResult
		want string
	}{
		{GuestResult{OK: true}, "OK"},
		{GuestResult{OK: true, Warnings: 2}, "WARNINGS: 2"},
		{GuestResult{Error: "got timeout"}, "got timeout"},
		{GuestResult{}, "unknown"},
	} {
		if got := tc.g.Status(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.g, got, tc.want)
		}
	}
}

// FuzzParseVzdumpLog: any input gives a result or an error, never a panic.
func FuzzParseVzdumpLog(f *testing.F) {
	f.Add(strings.Join(jobLog, "\n"), int64(jobStart))
	f.Add("INFO: Starting Backup of VM 1 (\nINFO: Backup started at 9999-99-99 99:99:99", int64(0))
	f.Fuzz(func(t *testing.T, log string, start int64) {
		j, err := ParseVzdumpLog(strings.Split(log, "\n"), start)
		if err == nil && len(j.LineErrors) > MaxLineErrors {
			t.Fatalf("%d line errors kept", len(j.LineErrors))
		}
	})
}
