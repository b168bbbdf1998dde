package sim

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// resourceItem is a guest of GET /cluster/resources?type=vm.
type resourceItem struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	VMID     int    `json:"vmid"`
	Name     string `json:"name"`
	Node     string `json:"node"`
	Status   string `json:"status"`
	Template *int   `json:"template"`
	MaxMem   int64  `json:"maxmem"`
}

// TestGuestList: every node's guests, in PVE's format, are the guests the
// backup truth reports (the ones the vzdump tasks back up); an offline
// node's guests are "unknown"; a bad type is a parameter error.
func TestGuestList(t *testing.T) {
	clock := newFixedClock(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	runInBubble(t, Config{Seed: 4, PVEClusters: 1, NodesPerCluster: 2, Now: clock.Now, History: 3 * 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		pve := f.Remotes()[0]
		env := c.getOK(pve.ID, pve.Nodes[0], "/api2/json/cluster/resources?type=vm")
		var items []resourceItem
		if err := json.Unmarshal(env.Data, &items); err != nil {
			t.Fatal(err)
		}
		truth := f.BackupTruth(clock.Now())
		if len(items) != len(truth) || len(items) < 80 {
			t.Fatalf("%d guests listed, truth has %d", len(items), len(truth))
		}
		byID := map[string]GuestBackup{}
		for _, g := range truth {
			byID[g.Type+"/"+g.VMID] = g
		}
		running := 0
		for _, it := range items {
			g, ok := byID[it.ID]
			if !ok || it.Type != g.Type || it.Name != g.Name || it.Node != g.Node || it.Template == nil || (*it.Template == 1) != g.Template {
				t.Errorf("listed %+v, truth %+v", it, g)
			}
			if it.MaxMem <= 0 || it.Status != "running" && it.Status != "stopped" {
				t.Errorf("guest %s: status %q, maxmem %d", it.ID, it.Status, it.MaxMem)
			}
			if it.Status == "running" {
				running++
			}
		}
		if running == 0 || running == len(items) {
			t.Errorf("%d of %d guests running", running, len(items))
		}
		f.SetFault(pve.ID, pve.Nodes[1], Fault{Offline: true})
		env = c.getOK(pve.ID, pve.Nodes[0], "/api2/json/cluster/resources?type=vm")
		items = nil
		if err := json.Unmarshal(env.Data, &items); err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			off := it.Node == pve.Nodes[1]
			if off != (it.Status == "unknown") || off && (it.Name != "" || it.Template != nil || it.MaxMem != 0) {
				t.Errorf("guest %+v on %s: status %q", it, it.Node, it.Status)
			}
		}
		if r := c.get(pve.ID, pve.Nodes[0], "/api2/json/cluster/resources?type=vms"); r.status != http.StatusBadRequest {
			t.Errorf("type=vms: %d %s", r.status, r.body)
		}
		if f.Stats(pve.ID).ClusterResources != 3 {
			t.Errorf("stats: %d guest list requests, want 3", f.Stats(pve.ID).ClusterResources)
		}
	})
}
