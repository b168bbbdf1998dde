package backups

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/taskfleet/taskfleet/task"
)

// Job types of the per-datastore overview.
const (
	JobVerify = "verify"
	JobSync   = "sync"
	JobPrune  = "prune"
	JobGC     = "garbage_collection"
	jobBackup = "backup" // guests' backups (for Succeeded)
)

// JobTypes are the PBS job types the overview reports, in its order.
var JobTypes = []string{JobVerify, JobSync, JobPrune, JobGC}

// BackupGroup is what a PBS backup task's worker id names:
// "<store>:[<namespace path>/]<type>/<id>", unescaped (task.UPID.ID is).
type BackupGroup struct {
	Store     string
	Namespace string // "ns/a/ns/b" as PBS prints it; "" for the root
	Type      string // vm, ct or host
	ID        string // the vmid, or a host's name
}

// ParseBackupWorkerID parses the worker id of a PBS backup task.
func ParseBackupWorkerID(id string) (BackupGroup, error) {
	store, path, ok := strings.Cut(id, ":")
	if !ok || store == "" {
		return BackupGroup{}, fmt.Errorf("backup worker id %q: want <store>:<type>/<id>", id)
	}
	parts := strings.Split(path, "/")
	if len(parts) < 2 {
		return BackupGroup{}, fmt.Errorf("backup worker id %q: want <type>/<id> after the store", id)
	}
	g := BackupGroup{Store: store, Type: parts[len(parts)-2], ID: parts[len(parts)-1]}
	g.Namespace = strings.Join(parts[:len(parts)-2], "/")
	switch {
	case g.Type != "vm" && g.Type != "ct" && g.Type != "host":
		return BackupGroup{}, fmt.Errorf("backup worker id %q: backup type %q, want vm, ct or host", id, g.Type)
	case g.ID == "":
		return BackupGroup{}, fmt.Errorf("backup worker id %q: no backup id", id)
	case g.Namespace != "" && len(parts)%2 != 0:
		return BackupGroup{}, fmt.Errorf("backup worker id %q: namespace %q is not ns/<name> pairs", id, g.Namespace)
	}
	return g, nil
}

// PBSJob classifies a PBS task as one of JobTypes with its datastore;
// ok is false for other tasks. The datastore jobs are the scheduled ones,
// each identified by its worker id:
//
//	verificationjob "<store>:<job>"                          -> verify
//	syncjob "<remote>:<remote-store>:<store>:[<ns>]:<job>"   -> sync
//	prunejob "<store>[:<ns>]"                                -> prune
//	garbage_collection "<store>" (empty on old PBS)          -> garbage_collection
//
// Manual runs (verify, sync, a group's prune, the verification of a
// group or snapshot) are not jobs: their outcome is in the task list.
func PBSJob(u task.UPID) (jobType, store string, ok bool) {
	jobType, ok = jobWorkerTypes[u.Type]
	switch {
	case !ok:
		return "", "", false
	case jobType == JobGC:
		return jobType, u.ID, true
	case jobType == JobSync:
		if f := strings.Split(u.ID, ":"); len(f) >= 4 {
			return jobType, f[2], true
		}
	}
	store, _, _ = strings.Cut(u.ID, ":")
	return jobType, store, true
}

// jobWorkerTypes maps the worker type of each datastore job to its job
// type.
var jobWorkerTypes = map[string]string{
	"verificationjob":    JobVerify,
	"syncjob":            JobSync,
	"prunejob":           JobPrune,
	"garbage_collection": JobGC,
}

// PBSWorkerTypes returns the worker types of the PBS tasks an overview
// reads: guests' backups and the datastore jobs of PBSJob, sorted.
func PBSWorkerTypes() []string {
	types := append(slices.Collect(maps.Keys(jobWorkerTypes)), jobBackup)
	slices.Sort(types)
	return types
}

// Succeeded reports whether a task of jobType (one of JobTypes, or
// "backup" for guests' backups) that ended with status succeeded; see
// the package documentation for the rule per type.
func Succeeded(jobType, status string) bool {
	switch task.ClassifyStatus(status) {
	case task.StatusOK:
		return true
	case task.StatusWarning:
		return jobType != JobSync
	}
	return false
}
