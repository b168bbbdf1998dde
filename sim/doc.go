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
//
// # Activity
//
// Task activity is generated lazily, up to the current time of the
// injectable clock (Config.Now), so a test can run days of activity in
// seconds by advancing the clock. It is deterministic: the tasks of one
// node on one UTC day depend only on the seed, the remote, the node and
// the day, so adding a node or changing the history window does not
// change any other task. A PVE node runs guest operations around the
// clock (more by day), consoles, an apt update each morning, and a
// nightly backup job at about 01:00 that backs up each of its guests in
// turn (one vzdump task per guest). A PBS server receives the guests'
// backups at night and runs its prune, sync, verify and garbage
// collection jobs. Tasks run for seconds to an hour, then finish with a
// realistic mix of statuses (about 90% OK).
//
// Like a real node, each node holds only its most recent
// Config.IndexSize finished tasks (PVE's index and index.1) plus the
// running ones; older tasks fall off. The fleet remembers every task it
// ever produced, compactly, so tests can compare what a client fetched
// with [Fleet.GroundTruth] and [Fleet.Held].
//
// # Backups
//
// Each PVE node has guests (guests.go), listed by /cluster/resources in
// PVE's format ("id":"qemu/100", type qemu|lxc, vmid, name, node,
// status, template, ...). The node backs them up with vzdump tasks
// (vzdump.go): each night one job task for most of its guests (no
// worker id; the per-guest outcome is only in the task log, in PVE's
// words), in the evening one task per guest with a job of its own (the
// vmid as worker id), and now and then a manual backup; some guests are
// never backed up, and on node 1 of each cluster two guests stop being
// backed up (see Config.BackupStopAfter). [Fleet.BackupTruth] and
// [Fleet.JobTruth] give, from the same tasks and plans the endpoints
// serve, what a client should conclude: per guest ([GuestBackup]) the
// last attempt and the last success, per PBS job ([DatastoreJob]) its
// last run.
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
