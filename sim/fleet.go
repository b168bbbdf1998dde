package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/internal/memnet"
	"github.com/taskfleet/taskfleet/task"
)

// Fleet is a simulated fleet of PVE clusters and PBS servers. Create it
// with New, serve it with Start and stop it with Close. All methods are
// safe for concurrent use.
type Fleet struct {
	cfg      Config
	log      zerolog.Logger
	key      *ecdsa.PrivateKey // of every node's certificate
	impostor tls.Certificate   // the certificate of nodes with the WrongCert fault
	network  *memnet.Network   // InMemory only
	clock    atomic.Int64      // the latest Now() seen, Unix seconds
	created  int64             // the first Now(), Unix seconds
	closing  atomic.Bool       // Close has begun
	panics   atomic.Int64      // handler panics recovered (bugs; tests expect none)

	mu       sync.RWMutex
	remotes  map[string]*remote
	ids      []string // remote ids, sorted
	nextSlot int      // address slots handed out
	state    fleetState
}

type fleetState uint8

const (
	created fleetState = iota
	started
	closed
)

// remote is one PVE cluster or PBS server.
type remote struct {
	id      string
	kind    task.Kind
	tokenID string
	secret  string
	stats   counters

	clusterMu    sync.Mutex
	clusterCache cachedReply // the last /cluster/tasks answer, by the nodes' versions

	// Guarded by Fleet.mu.
	nodes    []*node     // by number
	retired  []*activity // activities of removed nodes, for the ground truth
	nextNode int         // number of the last node added
	fault    Fault       // for nodes added later
	clock    clock       // its nodes' clock (clock.go); not guarded by mu
}

// node is one server: a PVE cluster node or a PBS server.
type node struct {
	remote      *remote
	name        string
	num         int
	act         *activity
	cert        tls.Certificate
	fingerprint string
	fault       atomic.Pointer[Fault]

	addr    atomic.Pointer[string] // where it listens (or will)
	removed atomic.Bool            // RemoveNode took it out: it never serves again

	// lifeMu serialises taking the server up and down; handlers never
	// take it, so stopping may wait for them while holding it.
	lifeMu sync.Mutex
	bound  bool        // addr is final: the node listened once
	srv    *nodeServer // nil while not serving
}

// Remote describes a remote as a client configures it.
type Remote struct {
	ID          string
	Kind        task.Kind
	TokenID     string // "taskfleet@pve!poll" (PBS: "taskfleet@pbs!poll")
	TokenSecret string
	Nodes       []string   // node names; a PBS server's is its host name
	Endpoints   []Endpoint // one per node, in the order of Nodes
}

// Endpoint is the address of one node.
type Endpoint struct {
	URL         string // "https://127.0.1.1:8006"
	Fingerprint string // SHA-256 of its certificate, "AB:CD:..."
	Node        string
}

// New creates a fleet: its remotes, nodes, certificates and tokens. It
// does not listen yet; see Start.
func New(cfg Config) (*Fleet, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("new fleet: %w", err)
	}
	f := &Fleet{cfg: cfg, log: cfg.Logger, remotes: map[string]*remote{}}
	if cfg.InMemory {
		f.network = &memnet.Network{}
	}
	now := cfg.Now().Unix()
	f.clock.Store(now)
	f.created = now
	from := now - int64(cfg.History.Seconds())
	stored, err := loadCertFile(cfg.CertFile)
	if err != nil {
		return nil, fmt.Errorf("new fleet: %w", err)
	}
	if f.key = stored.key; f.key == nil {
		if f.key, err = newKey(); err != nil {
			return nil, fmt.Errorf("new fleet: %w", err)
		}
	}
	impostorKey, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("new fleet: %w", err)
	}
	if f.impostor, _, err = newCertificate(impostorKey, "impostor", net.IPv4(127, 0, 0, 1)); err != nil {
		return nil, fmt.Errorf("new fleet: %w", err)
	}
	var nodes []*node
	for i := 1; i <= cfg.PVEClusters; i++ {
		r := f.newRemote(task.PVE, fmt.Sprintf("pve-c%03d", i))
		for range cfg.NodesPerCluster {
			nodes = append(nodes, f.newNode(r, from))
		}
	}
	for i := 1; i <= cfg.PBSServers; i++ {
		r := f.newRemote(task.PBS, fmt.Sprintf("pbs%03d", i))
		nodes = append(nodes, f.newNode(r, from))
	}
	fresh := stored.assign(nodes)
	if err := f.certify(fresh); err != nil {
		return nil, fmt.Errorf("new fleet: %w", err)
	}
	if cfg.CertFile != "" && (len(fresh) > 0 || stored.key == nil) {
		if err := writeCertFile(cfg.CertFile, f.key, nodes); err != nil {
			return nil, fmt.Errorf("new fleet: %w", err)
		}
	}
	return f, nil
}

// certify gives each node its certificate, on all CPUs.
func (f *Fleet) certify(nodes []*node) error {
	var wg sync.WaitGroup
	errs := make([]error, runtime.GOMAXPROCS(0))
	for w := range errs {
		wg.Go(func() {
			for i := w; i < len(nodes); i += len(errs) {
				n := nodes[i]
				host, _, _ := net.SplitHostPort(n.address())
				var err error
				if n.cert, n.fingerprint, err = newCertificate(f.key, n.name, net.ParseIP(host)); err != nil {
					errs[w] = fmt.Errorf("node %s: %w", n.name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// newRemote adds a remote without nodes; the caller holds mu or owns f.
func (f *Fleet) newRemote(kind task.Kind, id string) *remote {
	rng := rand.New(rand.NewPCG(hashSeed(f.cfg.Seed, id, "token"), 1))
	r := &remote{
		id: id, kind: kind,
		tokenID: "taskfleet@" + kind.String() + "!poll",
		secret: fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff,
			rng.Uint32()&0xfff, 0x8000|rng.Uint32()&0x3fff, rng.Uint64()&0xffffffffffff),
	}
	f.remotes[id] = r
	i, _ := slices.BinarySearch(f.ids, id)
	f.ids = slices.Insert(f.ids, i, id)
	return r
}

// newNode adds a node to r whose activity starts at from; the caller
// holds mu or owns f, and gives it its certificate (certify).
func (f *Fleet) newNode(r *remote, from int64) *node {
	r.nextNode++
	num := r.nextNode
	name := r.id
	if r.kind == task.PVE {
		name = r.id + "-n" + strconv.Itoa(num)
	}
	f.nextSlot++
	ip, port := slotAddr(f.cfg.SlotOffset+f.nextSlot), 8006
	if r.kind == task.PBS {
		port = 8007
	}
	n := &node{
		remote: r, name: name, num: num,
		act: newActivity(newProfile(f.cfg.Seed, r.kind, r.id, name, num, f.cfg.TaskRate), r.tokenID, from, f.cfg.IndexSize),
	}
	n.act.clock = &r.clock
	if r.kind == task.PVE && num == 1 {
		n.act.p.stopBase, n.act.p.stopAfter = f.created, int64(f.cfg.BackupStopAfter.Seconds())
	}
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	n.addr.Store(&addr)
	fl := r.fault
	n.fault.Store(&fl)
	r.nodes = append(r.nodes, n)
	return n
}

// slotAddr returns the loopback address of the s-th server (1-based):
// 127.0.1.1 to 127.0.1.254, then 127.0.2.1, and so on.
func slotAddr(s int) net.IP {
	j := (s-1)/254 + 1
	return net.IPv4(127, byte(j>>8), byte(j), byte(1+(s-1)%254))
}

// Start listens on every node's address and serves. In loopback mode a
// node whose 127.x.y.z address cannot be bound falls back to 127.0.0.1 on
// a free port. On error, Start stops what it started.
func (f *Fleet) Start() error {
	f.mu.Lock()
	if f.state != created {
		f.mu.Unlock()
		return fmt.Errorf("start fleet: already started")
	}
	f.state = started
	nodes := f.allNodes()
	f.mu.Unlock()
	for _, n := range nodes {
		if err := f.startNode(n); err != nil {
			f.Close()
			return fmt.Errorf("start fleet: %w", err)
		}
	}
	f.log.Debug().Int("remotes", len(f.ids)).Int("nodes", len(nodes)).Bool("in_memory", f.cfg.InMemory).Msg("fleet started")
	return nil
}

// Close stops every server and waits until all their goroutines have
// returned. It is safe to call more than once.
func (f *Fleet) Close() error {
	f.mu.Lock()
	if f.state == closed {
		f.mu.Unlock()
		return nil
	}
	f.state = closed
	f.closing.Store(true) // no node starts serving after this
	nodes := f.allNodes()
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(n.stop)
	}
	wg.Wait()
	if f.network != nil {
		f.network.Close()
	}
	f.log.Debug().Msg("fleet closed")
	return nil
}

// Settle brings every node's task history up to now, and builds the
// clusters' guests, as real remotes hold them before anyone asks; the
// fleet otherwise generates them on a node's first request. A benchmark
// calls it before it times a first sweep, so that the sweep pays for
// serving the remotes, not for inventing their past. It is safe for
// concurrent use.
func (f *Fleet) Settle() {
	f.mu.RLock()
	nodes := f.allNodes()
	f.mu.RUnlock()
	now := f.now()
	for _, n := range nodes {
		n.act.mu.Lock()
		n.act.advance(now)
		n.act.mu.Unlock()
		if n.remote.kind == task.PVE {
			n.act.p.pveGuests()
		}
	}
}

// allNodes returns every node; the caller holds mu.
func (f *Fleet) allNodes() []*node {
	var out []*node
	for _, id := range f.ids {
		out = append(out, f.remotes[id].nodes...)
	}
	return out
}

// Remotes returns every remote, sorted by ID. The endpoints' URLs are
// final once the fleet is started (a fallback port is chosen then).
func (f *Fleet) Remotes() []Remote {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Remote, 0, len(f.ids))
	for _, id := range f.ids {
		r := f.remotes[id]
		rr := Remote{ID: r.id, Kind: r.kind, TokenID: r.tokenID, TokenSecret: r.secret}
		for _, n := range r.nodes {
			rr.Nodes = append(rr.Nodes, n.name)
			rr.Endpoints = append(rr.Endpoints, Endpoint{URL: "https://" + n.address(), Fingerprint: n.fingerprint, Node: n.name})
		}
		out = append(out, rr)
	}
	return out
}

// DialContext connects to a node's address; pass it as the client's
// dialer. With InMemory it dials the in-memory network (the only way to
// reach the fleet then); otherwise it dials TCP. Connect latency is added
// by the server (see Fault.ConnectLatency), not here.
func (f *Fleet) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if f.network != nil {
		return f.network.DialContext(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// AddNode adds a node to a PVE cluster and, if the fleet is started,
// serves it. The node's activity starts now; it gets the remote's fault
// as set by SetFault(remote, "", ...). It returns the node's name.
func (f *Fleet) AddNode(remoteID string) (string, error) {
	f.mu.Lock()
	r := f.remotes[remoteID]
	switch {
	case r == nil:
		f.mu.Unlock()
		return "", fmt.Errorf("add node: no remote %q", remoteID)
	case r.kind != task.PVE:
		f.mu.Unlock()
		return "", fmt.Errorf("add node to %s: only PVE clusters have several nodes", remoteID)
	case len(r.nodes) >= maxNodes:
		f.mu.Unlock()
		return "", fmt.Errorf("add node to %s: at most %d nodes", remoteID, maxNodes)
	}
	n := f.newNode(r, f.now())
	err := f.certify([]*node{n}) // before anyone can see the node: under mu
	if err != nil {
		r.nodes = r.nodes[:len(r.nodes)-1]
		f.mu.Unlock()
		return "", fmt.Errorf("add node to %s: %w", remoteID, err)
	}
	serve := f.state == started
	f.mu.Unlock()
	if serve {
		if err := f.startNode(n); err != nil {
			return "", fmt.Errorf("add node to %s: %w", remoteID, err)
		}
	}
	f.log.Debug().Str("remote", remoteID).Str("node", n.name).Msg("node added")
	return n.name, nil
}

// RemoveNode removes a node from a PVE cluster: its server stops and it
// disappears from the cluster's lists. The tasks it ran stay in the
// ground truth, frozen as they were at removal; they are no longer held.
func (f *Fleet) RemoveNode(remoteID, nodeName string) error {
	f.mu.Lock()
	r := f.remotes[remoteID]
	if r == nil {
		f.mu.Unlock()
		return fmt.Errorf("remove node: no remote %q", remoteID)
	}
	i := slices.IndexFunc(r.nodes, func(n *node) bool { return n.name == nodeName })
	switch {
	case i < 0:
		f.mu.Unlock()
		return fmt.Errorf("remove node: remote %s has no node %q", remoteID, nodeName)
	case len(r.nodes) == 1:
		f.mu.Unlock()
		return fmt.Errorf("remove node %s: the last node of %s", nodeName, remoteID)
	}
	n := r.nodes[i]
	n.removed.Store(true)
	r.nodes = slices.Delete(r.nodes, i, i+1)
	r.retired = append(r.retired, n.act)
	now := f.now()
	f.mu.Unlock()
	n.act.retire(now)
	n.stop()
	f.log.Debug().Str("remote", remoteID).Str("node", nodeName).Msg("node removed")
	return nil
}

// now returns the fleet's time in Unix seconds: the latest Now() seen.
func (f *Fleet) now() int64 {
	t := f.cfg.Now().Unix()
	for {
		old := f.clock.Load()
		if t <= old {
			return old
		}
		if f.clock.CompareAndSwap(old, t) {
			return t
		}
	}
}

// lookup returns a remote and, if name is not "", one of its nodes.
func (f *Fleet) lookup(remoteID, name string) (*remote, *node) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r := f.remotes[remoteID]
	if r == nil || name == "" {
		return r, nil
	}
	for _, n := range r.nodes {
		if n.name == name {
			return r, n
		}
	}
	return r, nil
}

// nodesOf returns the current nodes of r.
func (f *Fleet) nodesOf(r *remote) []*node {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(r.nodes)
}

// address returns where the node listens, or will.
func (n *node) address() string { return *n.addr.Load() }

// online reports whether the node serves (not faulted offline).
func (n *node) online() bool { return !n.fault.Load().Offline }

// retire freezes the activity of a removed node at now.
func (a *activity) retire(now int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advance(now)
	a.until = a.frontier
}
