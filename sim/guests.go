package sim

import (
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The guests of a PVE node: what GET /cluster/resources?type=vm lists and
// what the node's vzdump tasks back up. A node's guests are fixed at
// creation, derived from the seed, the remote and the node (the vmids of
// profile.vms and profile.cts); guests do not migrate.
//
// Each guest has a backup policy:
//
//   - polJob: backed up each night by the cluster's backup job, one
//     vzdump task per node for all its job guests (no worker id; the
//     per-guest outcome is in the task log). Most guests.
//   - polSingle: backed up each evening by a job of its own, one vzdump
//     task with the vmid as worker id.
//   - polNone: not in any job (templates and a few others): never
//     backed up, unless someone starts a manual backup (they don't here).
//
// On top of that, node 1 of every cluster has two guests of the nightly
// job whose backups stop (someone excluded them from the job): one
// backupStaleBefore before the fleet was created, so it is overdue from
// the start, and one Config.BackupStopAfter after the creation, so that
// "no successful backup for 26 h" begins to fire while a client watches.

// Backup policies of a guest.
const (
	polJob uint8 = iota
	polSingle
	polNone
)

// backupStaleBefore is how long before the fleet's creation the first
// stopping guest of each cluster was last included in the backup job.
const backupStaleBefore = 30 * 3600

// guestSpec is one guest of a PVE node.
type guestSpec struct {
	vmid     int
	lxc      bool
	template bool
	running  bool
	policy   uint8
	stopAt   int64 // backups that start at or after stopAt leave it out; MaxInt64: never
}

// kind returns the guest type as PVE writes it: "qemu" or "lxc".
func (g *guestSpec) kind() string {
	if g.lxc {
		return "lxc"
	}
	return "qemu"
}

// guestRoles name the guests: "<role>-<vmid>".
var guestRoles = [...]string{
	"web", "db", "app", "mail", "dns", "proxy", "ci-runner", "git", "monitor",
	"files", "vpn", "ldap", "k8s-worker", "k8s-master", "redis", "kafka", "search", "build",
}

// name returns the guest's name, as its config's name (qemu) or
// hostname (lxc) says.
func (g *guestSpec) name() string {
	if g.template {
		return "tmpl-debian-12-" + strconv.Itoa(g.vmid)
	}
	return guestRoles[(g.vmid*7+g.vmid/100)%len(guestRoles)] + "-" + strconv.Itoa(g.vmid)
}

// backedUpBy reports whether the guest is in a backup that starts at t.
func (g *guestSpec) backedUpBy(pol uint8, t int64) bool {
	return g.policy == pol && t < g.stopAt
}

// guestTable is the lazily built guest list of a profile.
type guestTable struct {
	once sync.Once
	list []guestSpec // by vmid
	byID map[string]int
}

// pveGuests returns the node's guests by vmid (PVE; nil for PBS). Built once.
func (p *profile) pveGuests() []guestSpec {
	p.gt.once.Do(p.buildGuests)
	return p.gt.list
}

// guest returns the guest with the given vmid, or nil.
func (p *profile) guest(id string) *guestSpec {
	gs := p.pveGuests()
	if i, ok := p.gt.byID[id]; ok {
		return &gs[i]
	}
	return nil
}

func (p *profile) buildGuests() {
	if len(p.vms)+len(p.cts) == 0 {
		return
	}
	rng := rand.New(rand.NewPCG(p.seed, 0x6e57))
	list := make([]guestSpec, 0, len(p.vms)+len(p.cts))
	add := func(ids []string, lxc bool) {
		for _, id := range ids {
			vmid, _ := strconv.Atoi(id)
			g := guestSpec{vmid: vmid, lxc: lxc, stopAt: math.MaxInt64}
			x := rng.IntN(100)
			switch {
			case !lxc && x < 4:
				g.template, g.policy = true, polNone
			case x < 8:
				g.policy = polNone
			case x < 20:
				g.policy = polSingle
			}
			g.running = !g.template && rng.IntN(100) < 85
			list = append(list, g)
		}
	}
	add(p.vms, false)
	add(p.cts, true)
	slices.SortFunc(list, func(a, b guestSpec) int { return a.vmid - b.vmid })
	if p.nodeNum == 1 && p.stopBase > 0 {
		// Two of the job's guests stop being backed up.
		var job []int
		for i := range list {
			if list[i].policy == polJob {
				job = append(job, i)
			}
		}
		if len(job) >= 2 {
			r := rand.New(rand.NewPCG(p.remoteSeed, 0x5709))
			a := r.IntN(len(job))
			b := (a + 1 + r.IntN(len(job)-1)) % len(job)
			list[job[a]].stopAt = p.stopBase - backupStaleBefore
			list[job[b]].stopAt = p.stopBase + p.stopAfter
		}
	}
	p.gt.byID = make(map[string]int, len(list))
	for i := range list {
		p.gt.byID[strconv.Itoa(list[i].vmid)] = i
	}
	p.gt.list = list
}

// resourceTypes are the values of /cluster/resources' type parameter.
var resourceTypes = []string{"vm", "storage", "node", "sdn"}

// pveResources answers GET /cluster/resources[?type=vm|node|storage|sdn]
// like PVE::API2::Cluster's resources: per guest its id ("qemu/100"),
// type, vmid, name, node, status, template and resource figures; nodes
// as "node/<name>"; a guest on an offline node is listed with status
// "unknown" and only its id, type, vmid and node (no name: PVE takes it
// from the figures pvestatd broadcasts). Guests come first, by node and vmid,
// then the nodes, then the storages.
func (s *nodeServer) pveResources(r *http.Request) reply {
	pr := newParamReader(r.URL.Query(), false, "type", "_dc")
	typ, hasType := pr.value("type")
	if hasType && !slices.Contains(resourceTypes, typ) {
		pr.errs["type"] = "value '" + typ + "' does not have a value in the enumeration '" + strings.Join(resourceTypes, ", ") + "'"
	}
	if len(pr.errs) > 0 {
		return s.paramError(pr.errs)
	}
	now := s.f.now()
	nodes := s.f.nodesOf(s.n.remote)
	items := []any{}
	if !hasType || typ == "vm" {
		for _, n := range nodes {
			items = append(items, n.guestItems(now)...)
		}
	}
	if !hasType || typ == "node" {
		for _, n := range nodes {
			items = append(items, n.nodeItem(now))
		}
	}
	if !hasType || typ == "storage" {
		for _, n := range nodes {
			for _, st := range []string{storageLocal, "local-lvm", storagePBS} {
				item := map[string]any{"id": "storage/" + n.name + "/" + st, "type": "storage", "storage": st, "node": n.name, "status": "available", "shared": 0}
				switch {
				case !n.online():
					item["status"] = "unknown"
				case st == storagePBS:
					item["plugintype"], item["content"], item["shared"] = "pbs", "backup", 1
				case st == storageLocal:
					item["plugintype"], item["content"] = "dir", "iso,vztmpl,backup"
				default:
					item["plugintype"], item["content"] = "lvmthin", "rootdir,images"
				}
				items = append(items, item)
			}
		}
	}
	return jsonReply(items, -1, 0)
}

// guestItems returns the node's guests as /cluster/resources items.
func (n *node) guestItems(now int64) []any {
	p := n.act.p
	gs := p.pveGuests()
	out := make([]any, 0, len(gs))
	online := n.online()
	load := rand.New(rand.NewPCG(p.seed, uint64(now/60)^0x7e55))
	for i := range gs {
		g := &gs[i]
		kind := g.kind()
		id := kind + "/" + strconv.Itoa(g.vmid)
		if !online {
			// No current figures (pvestatd's RRD data) for a guest of an
			// offline node: PVE::API2Tools::extract_vm_stats then lists
			// only id, vmid, node, type and status "unknown".
			out = append(out, offlineGuestItem{ID: id, Node: n.name, Status: "unknown", Type: kind, VMID: g.vmid})
			continue
		}
		item := &guestItem{ID: id, Name: g.name(), Node: n.name, Status: "stopped", Type: kind, VMID: g.vmid}
		if g.template {
			item.Template = 1
		}
		hw := rand.New(rand.NewPCG(p.seed, uint64(g.vmid)))
		item.MaxCPU = 1 << hw.IntN(4)
		item.MaxMem = int64(1+hw.IntN(16)) << 30
		item.MaxDisk = int64(8+hw.IntN(120)) << 30
		if g.running {
			up := now - p.boot(now) - int64(hw.IntN(3600))
			item.Status = "running"
			item.CPU = 0.001 + 0.3*load.Float64()
			item.Mem = int64(float64(item.MaxMem) * (0.2 + 0.6*load.Float64()))
			item.Uptime = max(up, 1)
			item.NetIn, item.NetOut = max(up, 1)*int64(1000+hw.IntN(50000)), max(up, 1)*int64(500+hw.IntN(20000))
			item.DiskRead, item.DiskWrite = max(up, 1)*int64(4096+hw.IntN(1<<20)), max(up, 1)*int64(4096+hw.IntN(1<<19))
		}
		if g.lxc {
			item.Disk = int64(float64(item.MaxDisk) * (0.1 + 0.5*hw.Float64()))
		}
		out = append(out, item)
	}
	return out
}

// guestItem is a guest of an online node in /cluster/resources, its
// fields in the order PVE's JSON encoder writes them (sorted); a struct,
// not a map, because a steady sweep of 1,000 clusters encodes hundreds of
// thousands of them.
type guestItem struct {
	CPU       float64 `json:"cpu"`
	Disk      int64   `json:"disk"`
	DiskRead  int64   `json:"diskread"`
	DiskWrite int64   `json:"diskwrite"`
	ID        string  `json:"id"`
	MaxCPU    int     `json:"maxcpu"`
	MaxDisk   int64   `json:"maxdisk"`
	MaxMem    int64   `json:"maxmem"`
	Mem       int64   `json:"mem"`
	Name      string  `json:"name"`
	NetIn     int64   `json:"netin"`
	NetOut    int64   `json:"netout"`
	Node      string  `json:"node"`
	Status    string  `json:"status"`
	Template  int     `json:"template"`
	Type      string  `json:"type"`
	Uptime    int64   `json:"uptime"`
	VMID      int     `json:"vmid"`
}

// offlineGuestItem is a guest of an offline node in /cluster/resources.
type offlineGuestItem struct {
	ID     string `json:"id"`
	Node   string `json:"node"`
	Status string `json:"status"`
	Type   string `json:"type"`
	VMID   int    `json:"vmid"`
}
