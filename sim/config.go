package sim

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// Defaults for the zero fields of Config.
const (
	// PVEIdleTimeout is pveproxy's inactivity timeout per connection:
	// PVE::APIServer::AnyEvent sets $self->{timeout} = 5 when the
	// server is created without one, and pveproxy passes none.
	PVEIdleTimeout = 5 * time.Second
	// PVERequestsPerConn is pveproxy's keep_alive => 100: a connection
	// serves at most 100 requests.
	PVERequestsPerConn     = 100
	DefaultNodesPerCluster = 3
	DefaultHistory         = 7 * 24 * time.Hour
	DefaultTaskRate        = 6
	DefaultIndexSize       = 1500
)

// Config describes a fleet. The zero value is an empty fleet.
type Config struct {
	Seed            int64
	PVEClusters     int // PVE remotes, each with NodesPerCluster nodes
	NodesPerCluster int // default 3
	PBSServers      int // PBS remotes, one node each

	// Now is the fleet's clock; default time.Now. Activity is generated
	// up to Now() whenever a remote is asked, so advancing the clock by
	// days runs days of activity. The fleet never goes back in time: a
	// clock that does is treated as standing still.
	Now func() time.Time
	// History is how much activity exists before the first Now(),
	// default 7 days.
	History time.Duration
	// TaskRate is the mean number of tasks a PVE node starts per hour
	// outside the nightly backup, default 6, at most 1000 (a PBS server:
	// half of it); more by day, fewer at night.
	TaskRate float64
	// IndexSize is how many finished tasks a node keeps (PVE's index and
	// index.1 hold about 1000-2000), default 1500; older ones fall off.
	IndexSize int

	// BackupStopAfter is when, counted from the fleet's creation (the
	// first Now()), the backups of one guest per PVE cluster stop: the
	// nightly job leaves it out from then on (see guests.go). Another
	// guest per cluster stopped 30 h before the creation. Default 0: the
	// job after the creation is the first without it, so "no successful
	// backup for 26 h" fires for it within about a day.
	BackupStopAfter time.Duration

	// InMemory serves on an in-memory network (see Fleet.DialContext)
	// instead of loopback sockets, for tests inside testing/synctest.
	// Create and start the fleet inside the bubble that uses it.
	InMemory bool
	// IdleTimeout closes keep-alive connections idle this long. 0 is the
	// product's behaviour: 5 s on a PVE node (pveproxy), none on a PBS
	// server (see the package doc for the sources); negative never
	// closes an idle connection.
	IdleTimeout time.Duration
	// MaxRequestsPerConn closes a connection after it has served this
	// many requests (the last answer says "Connection: close"). 0 is the
	// product's behaviour: 100 on a PVE node, no cap on a PBS server;
	// negative: no cap.
	MaxRequestsPerConn int
	// NoSessionTickets turns TLS session tickets off. Both products
	// issue them (OpenSSL's default), so by default a client that keeps
	// a session cache resumes its sessions with a node.
	NoSessionTickets bool
	// AuthFailureDelay delays 401 answers. pveproxy and PBS delay them by
	// 3 s; the default 0 answers at once.
	AuthFailureDelay time.Duration

	// SlotOffset shifts the loopback addresses of the nodes: the first
	// node listens on the address of slot SlotOffset+1 (slot 1 is
	// 127.0.1.1, slot 255 is 127.0.2.1). Tests that need the real ports
	// (8006, 8007) while other fleets run pick a random offset.
	SlotOffset int
	// CertFile, when set, keeps the fleet's key and its nodes'
	// certificates in this PEM file: read when it exists, so a restarted
	// fleet presents the same certificates (and fingerprints), and
	// written when it does not hold them all. See certfile.go.
	CertFile string

	// Logger receives server start/stop and fault changes at debug
	// level; the zero value logs nothing.
	Logger zerolog.Logger
}

// withDefaults fills the zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.PVEClusters < 0 || c.PBSServers < 0 || c.NodesPerCluster < 0 || c.IndexSize < 0 || c.History < 0 || c.TaskRate < 0 {
		return c, fmt.Errorf("negative size, history or rate in config")
	}
	if c.NodesPerCluster == 0 {
		c.NodesPerCluster = DefaultNodesPerCluster
	}
	if c.NodesPerCluster > maxNodes {
		return c, fmt.Errorf("%d nodes per cluster: at most %d", c.NodesPerCluster, maxNodes)
	}
	if c.TaskRate > maxTaskRate {
		return c, fmt.Errorf("task rate %g per hour: at most %d", c.TaskRate, maxTaskRate)
	}
	if c.SlotOffset < 0 || c.SlotOffset > maxSlotOffset {
		return c, fmt.Errorf("slot offset %d: want 0 to %d", c.SlotOffset, maxSlotOffset)
	}
	if c.PVEClusters+c.PBSServers > maxRemotes {
		return c, fmt.Errorf("%d remotes: at most %d", c.PVEClusters+c.PBSServers, maxRemotes)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.History == 0 {
		c.History = DefaultHistory
	}
	if c.TaskRate == 0 {
		c.TaskRate = DefaultTaskRate
	}
	if c.IndexSize == 0 {
		c.IndexSize = DefaultIndexSize
	}
	return c, nil
}

const (
	maxNodes    = 64     // nodes per cluster, AddNode included
	maxRemotes  = 100000 // remotes per fleet
	maxTaskRate = 1000   // tasks per node and hour: keeps pids and PBS task counters apart

	maxSlotOffset = 254 * 60000 // 127.234.97.1: room for 5000 more blocks of 254 addresses below 127.255.255.254
)
