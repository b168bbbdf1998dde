package actors

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/backups"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/metrics"
	"github.com/taskfleet/taskfleet/task"
)

// TestBackupJobLogsDroppedExported: the parsed logs the backup keeper drops
// beyond MaxBackupJobLogs are counted in
// taskfleet_backup_job_logs_dropped_total of their remote (logs older
// than the retention are not: they are expired, not dropped), and the
// file keeps the newest MaxBackupJobLogs.
func TestBackupJobLogsDroppedExported(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := config.Default()
	env := &Env{Log: zerolog.Nop(), Metrics: metrics.New(reg)}
	env.setConfig(&cfg)
	k := newBackupKeeper(&Service{env: env}, t.TempDir())

	const extra, expired = 3, 2
	st := &backupState{Version: backupStateVersion, Remote: "east", Logs: map[task.UPID]*backups.JobLog{}}
	now := time.Now().Unix()
	for i := range MaxBackupJobLogs + extra {
		st.Logs[task.UPID{Kind: task.PVE, Node: "pve1", PID: uint32(i + 1), StartTime: now - int64(i), Type: "vzdump", User: "root@pam"}] = &backups.JobLog{}
	}
	old := now - int64(cfg.Polling.RetentionDays+1)*24*3600
	for i := range expired {
		st.Logs[task.UPID{Kind: task.PVE, Node: "pve1", PID: uint32(1_000_000 + i), StartTime: old - int64(i), Type: "vzdump", User: "root@pam"}] = &backups.JobLog{}
	}
	k.save(st)

	want := `# HELP taskfleet_backup_job_logs_dropped_total Parsed vzdump job logs the backup keeper dropped, oldest first, beyond the bound it keeps per remote.
# TYPE taskfleet_backup_job_logs_dropped_total counter
taskfleet_backup_job_logs_dropped_total{remote="east"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "taskfleet_backup_job_logs_dropped_total"); err != nil {
		t.Error(err)
	}
	data, err := os.ReadFile(k.path("east"))
	if err != nil {
		t.Fatal(err)
	}
	var f backupState
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Logs) != MaxBackupJobLogs {
		t.Errorf("file keeps %d logs, want %d", len(f.Logs), MaxBackupJobLogs)
	}
}
