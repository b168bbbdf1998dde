package sim

import "sync/atomic"

// Stats counts what a remote's servers did since the fleet was created.
// Requests are counted by the server that received them, including the
// ones a node answered for another node of its cluster.
type Stats struct {
	Requests      int64 // every request that reached a server
	NodeList      int64 // GET /nodes
	ClusterStatus int64 // GET /cluster/status
	ClusterTasks  int64 // GET /cluster/tasks
	TaskList      int64 // GET /nodes/{node}/tasks
	TaskStatus    int64 // GET /nodes/{node}/tasks/{upid}/status
	// ClusterResources counts GET /cluster/resources (the guest list).
	ClusterResources int64
	// TaskLog counts GET /nodes/{node}/tasks/{upid}/log (both products).
	TaskLog int64
	Other   int64 // anything else (version, unknown paths)
	Errors  int64 // answers with status >= 400

	Connections int64 // new connections accepted
	Resumed     int64 // connections whose TLS handshake resumed a session
	TasksServed int64 // task items returned by task lists and /cluster/tasks
	// ClusterTasksServed are the items of /cluster/tasks alone.
	ClusterTasksServed int64
	BytesIn            int64 // bytes read from connections (TLS records included)
	BytesOut           int64 // bytes written to connections (TLS records included)
}

// endpoint is the kind of a request path, for Stats.
type endpoint uint8

const (
	epOther endpoint = iota
	epNodeList
	epClusterStatus
	epClusterTasks
	epTaskList
	epTaskStatus
	epClusterResources
	epTaskLog
	epCount // the number of endpoint kinds
)

// counters are a remote's Stats, updated concurrently.
type counters struct {
	requests, errors, connections, resumed, tasksServed atomic.Int64
	bytesIn, bytesOut, clusterServed                    atomic.Int64
	byEndpoint                                          [epCount]atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Requests:           c.requests.Load(),
		Other:              c.byEndpoint[epOther].Load(),
		NodeList:           c.byEndpoint[epNodeList].Load(),
		ClusterStatus:      c.byEndpoint[epClusterStatus].Load(),
		ClusterTasks:       c.byEndpoint[epClusterTasks].Load(),
		TaskList:           c.byEndpoint[epTaskList].Load(),
		TaskStatus:         c.byEndpoint[epTaskStatus].Load(),
		ClusterResources:   c.byEndpoint[epClusterResources].Load(),
		TaskLog:            c.byEndpoint[epTaskLog].Load(),
		Errors:             c.errors.Load(),
		Connections:        c.connections.Load(),
		Resumed:            c.resumed.Load(),
		TasksServed:        c.tasksServed.Load(),
		BytesIn:            c.bytesIn.Load(),
		ClusterTasksServed: c.clusterServed.Load(),
		BytesOut:           c.bytesOut.Load(),
	}
}

// Stats returns the counters of a remote; the zero Stats for an unknown
// remote.
func (f *Fleet) Stats(remoteID string) Stats {
	r, _ := f.lookup(remoteID, "")
	if r == nil {
		return Stats{}
	}
	return r.stats.snapshot()
}

// classify returns the endpoint kind of an /api2/json path split into
// segments.
func classify(segs []string) endpoint {
	switch {
	case len(segs) == 1 && segs[0] == "nodes":
		return epNodeList
	case len(segs) == 2 && segs[0] == "cluster" && segs[1] == "status":
		return epClusterStatus
	case len(segs) == 2 && segs[0] == "cluster" && segs[1] == "tasks":
		return epClusterTasks
	case len(segs) == 3 && segs[0] == "nodes" && segs[2] == "tasks":
		return epTaskList
	case len(segs) == 5 && segs[0] == "nodes" && segs[2] == "tasks" && segs[4] == "status":
		return epTaskStatus
	case len(segs) == 2 && segs[0] == "cluster" && segs[1] == "resources":
		return epClusterResources
	case isLogPath(segs):
		return epTaskLog
	}
	return epOther
}
