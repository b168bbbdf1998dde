// Package proxmox is the HTTPS client for one Proxmox remote: a Proxmox VE
// cluster or a Proxmox Backup Server. It lists nodes and tasks, pages
// through a node's task list, asks for one task's status, and classifies
// every failure. It does not log and keeps no task state: scheduling,
// cursors, backoff and health belong to the poller that owns the client.
//
// # One transport per remote
//
// [New] builds one http.Transport for the remote, used by every call of the
// [Client]. Keep-alive connections are reused across polls:
// MaxIdleConnsPerHost equals MaxConnsPerHost equals Config.MaxConns (Go's
// default of 2 idle connections would close 3 of 5 after every burst), and
// the idle timeout (15 min) outlives the 10-minute refresh. TLS sessions are
// cached per endpoint for resumption. The client owns the TLS handshake
// (DialTLSContext), so each endpoint has its own TLS settings: system roots
// or Config.RootCAs with host name verification, or a pinned SHA-256
// fingerprint of the leaf certificate, checked on every connection,
// resumed ones included. A refused certificate is a [*CertMismatchError]
// showing the fingerprint seen. HTTP/1.1 only, as pveproxy speaks it; no
// proxy from the environment; redirects are not followed (they would carry
// the token elsewhere). The client asks for gzip (pveproxy compresses
// bodies over 1 KiB) and decompresses with klauspost/compress (gunzip.go);
// a body that is not valid gzip is a [*MalformedError].
//
// # Caps and timeouts
//
// Each call holds one of the remote's MaxConns slots (default 5 for PVE, 1
// for PBS) and then one permit of the global [Limiter], from before the
// request until its body is read. The remote's own slot is taken first, so
// a remote queueing behind its own cap never sits on global permits that
// other remotes could use. So at most MaxConns requests of a remote are in
// flight, over all its endpoints; the transport caps connections per
// endpoint (host) at MaxConns, and keeps up to that many idle per endpoint,
// so a remote polled through one endpoint never has more than MaxConns
// connections, while one whose nodes are each asked directly may keep a
// few connections to each node between polls. Timeouts: dial, TLS handshake, response headers,
// and a context deadline around each whole HTTP exchange. Bodies are
// decoded as a stream through a reader that fails as soon as the
// decompressed body passes Config.MaxBodyBytes, so at most that much is
// ever read ([*BodyTooLargeError]).
//
// # Endpoints
//
// A PVE cluster is reachable through any node, which proxies requests for
// other nodes (one more hop; 595/596 when the target is down). Endpoints
// are tried in order while they cannot be connected to (dial or handshake
// failure, refused certificate); the one that answered is tried first next
// time, and one that failed goes last for a minute. Requests about a node
// go to that node's own endpoint when the client knows it: [Client.Discover]
// asks each endpoint's /cluster/status which node it is (the entry with
// local=1), automatically the first time an unmapped node is asked for.
//
// # Paging
//
// PVE and PBS return at most limit tasks (50 without a limit; limit=0 means
// nothing on PVE and everything on PBS, so a limit is always sent). Their
// "total" is not usable for paging (PBS's is only a "more may follow"
// marker), so [Client.FetchTasks] pages until a page comes back short. The
// lists are not sorted by start time and move while we page: running tasks
// come first, then finished ones newest-finished first, new tasks push
// everything down and a task that finishes leaves the running part (moving
// the rest of it up). So pages overlap by a tenth, tasks are de-duplicated
// by UPID (a finished copy replaces a running one), a page that does not
// contain the tail of the previous page (the list moved up by more than the
// overlap) makes the client read the previous window again, and a list that
// yields full pages with nothing new ends with a [*PagingError]. Task lists
// are decoded item by item, so memory holds the tasks, not the body. since
// is inclusive; the caller's cursor must remember the UPIDs it already has
// at its cutoff second.
//
// # Errors
//
// Every error names the remote, the node (when there is one) and the URL
// requested (never the query), and is one of [*UnreachableError],
// [*TimeoutError], [*AuthError], [*NodeOfflineError], [*ServerError],
// [*MalformedError], [*BodyTooLargeError], [*CertMismatchError],
// [*PagingError], or [*CanceledError] when the caller's context ended
// (it unwraps to ctx.Err(); the client's own timeouts do not match
// context.DeadlineExceeded). [ErrorKind] maps them to metric labels. A
// malformed item of a task list is skipped and reported as an [*ItemError]
// while the rest of the page is kept. The API token secret never appears in
// an error, and Config and Client print it redacted with every fmt verb.
package proxmox
