// Package sim is a simulated fleet of Proxmox VE clusters and Proxmox
// Backup Servers, the other side of the wire for taskfleet's client,
// poller and benchmark tests. It must not import the client package.
//
// Every node of a PVE cluster, and every PBS server, is an HTTPS server
// with its own self-signed certificate at its own address: distinct
// loopback addresses 127.0.x.y:8006 (PBS :8007), or, with
// Config.InMemory, the same addresses on an in-memory network
// (internal/memnet) so tests can run inside a testing/synctest bubble
// where time is virtual.
//
// The servers answer the task endpoints of the real products with their
// real parameters, order and response shapes, as recorded in the
// fixtures beside the repository (../shared/fixtures/proxmox):
//
//	PVE  GET /api2/json/nodes
//	     GET /api2/json/cluster/status
//	     GET /api2/json/cluster/tasks
//	     GET /api2/json/cluster/resources[?type=vm|node|storage|sdn]
//	     GET /api2/json/nodes/{node}/tasks
//	     GET /api2/json/nodes/{node}/tasks/{upid}/status
//	PBS  GET /api2/json/nodes/localhost/tasks
//	     GET /api2/json/nodes/localhost/tasks/{upid}/status
//	both GET /api2/json/version
//
// and behave like pveproxy where it matters to a client: bodies over
// 1 KiB are gzip-compressed when the client accepts it, the connection
// is closed after a response with status >= 400, a request for another
// node of the cluster is answered (PVE proxies it; for an offline node
// with 595 and the socket error as the reason phrase), and API tokens
// are checked (401 otherwise).
//
// # Connections
//
// By default the servers treat connections as the products do; the
// Config knobs (IdleTimeout, MaxRequestsPerConn, NoSessionTickets) change
// that for tests.
//
//   - PVE closes a connection idle for 5 s (PVEIdleTimeout). Source:
//     pve-http-server src/PVE/APIServer/AnyEvent.pm, new(): "$self->{timeout}
//     = 5 if !$self->{timeout}", used as the AnyEvent::Handle inactivity
//     timeout of every accepted connection (accept_connections) and reset
//     after each response (response()); pve-manager's
//     PVE/Service/pveproxy.pm passes no timeout (keep_alive => 100,
//     max_conn => 500, max_requests => 1000; see
//     ../shared/docs/proxmox-api.md). Read from the source: sure.
//   - PVE serves at most 100 requests per connection
//     (PVERequestsPerConn): pveproxy's keep_alive => 100 is copied into
//     each connection's state and decremented per request header
//     (push_request_header); at 0 the answer says "Connection: close"
//     (response(), finish_response()). Sure. (The worker's max_requests
//     ends a worker process, not a connection; not simulated.)
//   - PBS keeps idle connections and has no request cap: proxmox-backup's
//     src/bin/proxmox-backup-proxy.rs serves hyper::Server::builder(...)
//     .serve(rest_server) with hyper's defaults (HTTP/1.1 keep-alive on, no
//     idle timeout, no request cap) and only a TCP keep-alive probe time
//     (PROXMOX_BACKUP_TCP_KEEPALIVE_TIME), which does not close a healthy
//     idle connection. Fairly sure for PBS 3.x (hyper 0.14); later
//     versions may add a header read timeout.
//   - Both issue TLS session tickets: pveproxy's AnyEvent::TLS context and
//     PBS's OpenSSL SslAcceptor leave OpenSSL's tickets on (neither sets
//     SSL_OP_NO_TICKET). Fairly sure; a PVE node with 3 pveproxy workers
//     may only resume a session on the worker that issued it if the
//     workers do not share the ticket key (not simulated: every node here
//     resumes its own sessions). Each node has its own key, so a session
//     never resumes on another node.
//   - Not as the products: a node's certificate has an ECDSA P-256 key.
//     PVE's self-signed node certificate (pve-ssl.pem) has an RSA key of
//     2048 bits (pve-cluster's gen_pve_ssl_key; fairly sure) and PBS's
//     proxy.pem an RSA key too. The signature of each full handshake is
//     the remote's CPU, not taskfleet's; ECDSA keeps the in-process
//     fleet's share of a benchmark small. The client's verification
//     differs by tens of microseconds either way.
//
// # Activity
//
// Task activity is generated lazily, up to the current time of the
// injectable clock (Config.Now), so a test can run days of activity in
// seconds by advancing the clock. It is deterministic: the tasks of one
// node on one UTC day depend only on the seed, the remote, the node and
// the day (and, on node 1 of a cluster, on when the fleet was created:
// two of its guests stop being backed up relative to it), so adding a
// node or changing the history window does not change any other task. A
// PVE node runs guest operations around the clock (more by day),
// consoles, an apt update each morning, a nightly backup job at about
// 01:00 that backs up most of its guests in one vzdump task, and the
// guests' own backup jobs at about 21:00 (see Backups). A PBS server
// receives backups at night and runs its prune, sync, verify and garbage
// collection jobs per datastore. Tasks run for seconds to an hour (a
// nightly job over many guests for hours), then finish with a realistic
// mix of statuses (about 90% OK).
//
// Like a real node, each node holds only its most recent
// Config.IndexSize finished tasks (PVE's index and index.1) plus the
// running ones; older tasks fall off. The fleet remembers every task it
// ever produced, compactly, so tests can compare what a client fetched
// with [Fleet.GroundTruth] and [Fleet.Held].
//
// # Backups
//
// Each PVE node has 40 to 100 guests (guests.go; vmids 100*n to
// 100*n+99 on node n, about 30% containers, a few templates), listed by
// GET /cluster/resources?type=vm in PVE's format: "id" "qemu/100" or
// "lxc/107", "type", "vmid" (a number), "name", "node", "status"
// (running, stopped; "unknown", and no name, template or figures, for
// the guests of an offline node),
// "template" (0 or 1) and the resource figures (maxcpu, maxmem,
// maxdisk, cpu, mem, disk, uptime, netin, netout, diskread, diskwrite).
// Without type the answer also lists the nodes ("node/<name>") and
// storages; an unknown type is a parameter error; with the NoAudit
// fault the list is empty (PVE filters it by privilege).
//
// These guests are the ones the node's vzdump tasks back up (vzdump.go),
// in PVE's words (pve-manager PVE/VZDump.pm):
//
//   - each night at about 01:00 the cluster's backup job: on each node
//     one vzdump task without worker id for its job guests (with the vmid
//     as worker id when only one is left), to storage "pbs-backup";
//   - each evening at about 21:00 the guests with a job of their own, one
//     vzdump task each with the vmid as worker id, to "pbs-backup" or
//     "local";
//   - now and then a manual backup of a guest (vmid as worker id);
//   - templates and a few guests are in no job: never backed up.
//
// A task's log starts with "INFO: starting new backup job: vzdump <vmids>
// ... --storage <storage> ...", then per guest "INFO: Starting Backup of
// VM <vmid> (qemu|lxc)" and either "INFO: Finished Backup of VM <vmid>
// (hh:mm:ss)" or "ERROR: Backup of VM <vmid> failed - <error>"; a guest's
// lines run until the next guest's Starting line, and a "WARN: ..." among
// them (possibly after its "Backup finished at" line) is the guest's
// warning. About 0.6% of guests fail, 1% warn. A job with a failed guest
// ends "INFO: Backup job finished with errors" and status "job errors";
// otherwise "INFO: Backup job finished successfully" and "OK" or
// "WARNINGS: n". Rarely a job is "interrupted by signal" (the guest being
// backed up fails with it, "ERROR: Backup job failed - interrupted by
// signal", the rest are not started), its job-abort hook script fails
// (status "command '...' failed: exit code 1", every guest done), or the
// node dies during a guest: the log stops, no TASK line, status
// "unexpected status" (that guest's outcome is unknown, the rest not
// started). A running task's log grows with the clock.
//
// Node 1 of every cluster has two job guests whose backups stop: the job
// leaves one out from 30 h before the fleet's creation (it is overdue
// from the start) and the other from Config.BackupStopAfter after the
// creation (default: at once, so it is 26 h overdue about a day later).
// [Fleet.BackupStops] names them:
//
//	func (f *Fleet) BackupStops() []BackupStop // {Remote, Node, VMID string; At time.Time}
//
// A PBS server (pbsjobs.go) receives backups from clients in four
// parallel streams each night, worker id "<store>:<type>/<id>" as
// worker_id in lists and escaped systemd-style in the UPID
// ("store1\x3avm-123", "store1\x3ahost-fs\x2d01"), for vm, ct and host
// groups on datastores store1 and store2, and runs per datastore:
//
//	prunejob            <store>
//	syncjob             <remote>:<remote-store>:<store>::<job>
//	verificationjob     <store>:<job>
//	garbage_collection  <store>
//
// with realistic outcomes and logs: a sync ends "WARNINGS: 2" (PBS fell
// back to the old protocol) or fails "sync failed with some errors." (a
// group was not copied: "sync group vm/123 failed - ..."); a
// verification fails "verification failed - please check the log for
// details" (a corrupt chunk); garbage collection warns about missing
// chunks ("WARN: warning: unable to access non-existent chunk ...",
// WARNINGS: 1-3); a prune job warns when it could not remove a snapshot.
// A PBS task with status "unknown" has no TASK line either.
//
// # Ground truth of backups
//
// [Fleet.BackupTruth] and [Fleet.JobTruth] say what a client that polls
// the fleet since its creation, reads the guest lists and parses the
// logs of the multi-guest vzdump tasks should conclude. They are computed
// from the same tasks and plans the endpoints serve, and count a task
// when it had finished by the time asked and was held by its node (in
// the index) at some moment since the creation; running tasks do not
// count. Times are the remote's, as its task lists write them.
//
//	func (f *Fleet) BackupTruth(at time.Time) []GuestBackup
//	func (f *Fleet) JobTruth(at time.Time) []DatastoreJob
//
//	type GuestBackup struct {
//		Remote, Node, VMID, Type, Name string // PVE: qemu|lxc and the guest's name; PBS: vm|ct|host, Node the server
//		Template                        bool
//		LastStart, LastEnd              time.Time        // the task of the last attempt; zero: never
//		LastStatus                      task.StatusClass // the guest's outcome
//		LastError                       string           // the guest's error, or the task's status
//		LastUPID                        task.UPID
//		Storage                         string           // PVE storage ("pbs-backup", "local") or PBS datastore
//		LastOKStart, LastOKEnd          time.Time        // the last ok or warning; zero: none
//		LastOKUPID                      task.UPID
//	}
//
//	type DatastoreJob struct {
//		Remote, Store, Type, ID string // Type: verificationjob, syncjob, prunejob, garbage_collection
//		Start, End              time.Time
//		Status                  string
//		Class                   task.StatusClass
//		UPID                    task.UPID
//	}
//
// BackupTruth has a row for every guest of every current PVE node (never
// backed up ones with zero times) and for every PBS backup group with a
// known task. A single-guest vzdump task's outcome is its status class
// (task.ClassifyStatus); a multi-guest task's outcome per guest is its
// log's: Finished ok (warning with a WARN line), ERROR error, a guest
// whose lines stop unknown, a guest never started no attempt. Warnings
// count as success. In JobTruth, WARNINGS of a sync job mean something
// was not copied as configured; of garbage collection, missing chunks; of
// a prune job, a snapshot not removed: whether that counts as success is
// the reader's rule.
//
// # Faults
//
// [Fleet.SetFault] switches faults per remote or per node at run time:
// latency per request and per new connection, hanging, error statuses,
// malformed, truncated, oversized and trickling bodies, a wrong
// certificate, and a node going offline. [Fleet.AddNode] and
// [Fleet.RemoveNode] change a cluster's membership.
//
// # Stopping
//
// Each node server runs one accept loop and one goroutine per
// connection; [Fleet.Close] (and a node going offline or being removed)
// closes the listener and every connection, wakes every waiting handler,
// and waits until all of those goroutines have returned.
package sim
