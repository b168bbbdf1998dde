// Package api serves taskfleet's HTTP API, following the conventions of
// the Proxmox APIs and compatible with Proxmox Datacenter Manager's remote
// task endpoints:
//
//	GET  /api2/json/remotes/tasks/list        tasks, PDM's TaskFilters plus remote and node
//	GET  /api2/json/remotes/tasks/statistics  counts by type and by remote, same filters
//	POST /api2/json/remotes/tasks/refresh     fetch remotes now (remotes, wait)
//	POST /api2/json/remotes/tasks/track       poll a task every tick (remote, upid)
//	GET  /api2/json/remotes/status            health of each remote
//	POST /api2/json/reload                    re-read the configuration
//	GET  /metrics                             Prometheus metrics
//	GET  /livez, /healthz, /readyz            probes, without authentication
//
// Success answers are {"data": ...} (plus "total" for lists); errors are
// {"data": null, "message": "...", "errors": {"param": "why"}} with the
// status code saying what went wrong: 400 bad parameter, 401 missing or
// wrong token, 403 out of the token's scope, 404 unknown path or remote,
// 405 wrong method, 408 body too slow, 413 body too large, 414 request
// target too long, 415 unsupported body type, 422 reload of an invalid
// configuration, 431 headers too large, 500 the daemon failed (a generic message with the
// request id; the detail is logged), 503 too many requests in flight
// (with Retry-After). Parameters can be given in the query string, as a
// form body or as a JSON object body, and are merged.
//
// Every request passes the edge first (edge.go): it gets an id (the
// X-Request-Id header and the request_id of its log lines), is checked
// against the size limits and the in-flight cap, and its answer is
// gzip-compressed when it is over 1 KiB and the client accepts it. Lists
// are streamed from the backend's snapshot (TaskStreamer), as JSON or CSV.
// ConfigureServer sets the http.Server's timeouts and limits.
//
// The package defines the [Backend] it serves; it knows nothing of the
// cache, the actors or the remotes. docs/api.md has curl examples.
package api
