// Package backups turns a fleet's task history into a backup overview:
// per guest, when its last backup ran, how it ended and when the last
// good one was; per Proxmox Backup Server datastore, the last run of each
// verify, sync, prune and garbage-collection job (PBSJob).
//
// Where a guest's outcome comes from:
//   - a PVE vzdump task for one guest carries the vmid as its worker id;
//     its status is the guest's;
//   - a vzdump job task for several guests has no worker id: its task log
//     says, per guest, "INFO: Starting Backup of VM 100 (qemu)", then
//     "INFO: Finished Backup of VM 100 (00:01:23)" or "ERROR: Backup of
//     VM 100 failed - <reason>" (PVE::VZDump); "WARN: " lines up to the
//     next guest make a finished guest's outcome a warning, a guest whose
//     lines end without either is unknown. ParseVzdumpLog reads it; the
//     caller fetches the log once and keeps the JobLog. The guest's times
//     are the job task's;
//   - a PBS backup task carries "<store>:[<namespace>/]<type>/<id>" in its
//     worker id (ParseBackupWorkerID), type vm, ct or host.
//
// The guests that exist come from each PVE cluster's guest list (GET
// /cluster/resources?type=vm); a listed guest without any backup is a row
// of class "none".
//
// Whether a status counts as success (Succeeded) depends on the job type:
//
//	backup (vzdump, PBS backup)  OK, WARNINGS: the backup was written
//	                             (warnings are e.g. a failed fs-freeze)
//	verify                       OK, WARNINGS: the verification ran to its
//	                             end; corrupt chunks end it in an error
//	sync                         OK only: a sync that ends in warnings has
//	                             failed to copy something
//	prune                        OK, WARNINGS: the retention was applied;
//	                             a snapshot it could not remove (locked)
//	                             is removed by the next run
//	garbage_collection           OK, WARNINGS: the space was reclaimed
//
// Statuses are classified as the task list does (task.ClassifyStatus,
// PDM's rule): an unknown status ("", "unknown") never counts as
// success, nor does an error.
//
// An Overview is immutable once built: readers share it without locks.
package backups
