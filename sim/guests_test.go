package sim

import (
	"bytes"
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

// TestGuestsJSON: the hand-written answer to type=vm is byte for byte what
// encoding/json writes for the same items, for online and offline nodes,
// and for the values it leaves to encoding/json (odd strings and floats).
func TestGuestsJSON(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	f, err := New(Config{Seed: 11, PVEClusters: 2, NodesPerCluster: 3, InMemory: true, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	r := f.Remotes()[0]
	f.SetFault(r.ID, r.Nodes[1], Fault{Offline: true})
	for _, id := range []string{f.Remotes()[0].ID, f.Remotes()[1].ID} {
		rem, _ := f.lookup(id, "")
		var items []any
		for _, n := range rem.nodes {
			items = append(items, n.guestItems(at.Unix())...)
		}
		want, err := json.Marshal(struct {
			Data []any `json:"data"`
		}{items})
		if err != nil {
			t.Fatal(err)
		}
		got := guestsJSON(rem.nodes, at.Unix())
		if !bytes.Equal(got, want) {
			t.Errorf("%s: hand-written guest list differs from encoding/json's:\n%s\n%s", id, got, want)
		}
		if c := 16 + guestItemSize*len(items); cap(got) != c {
			t.Errorf("%s: %d guests in %d bytes outgrew the %d bytes set aside", id, len(items), len(got), c)
		}
	}
	odd := &guestItem{CPU: 1e-7, ID: "qemu/100", Name: `<a> & "b" \ é` + "\x01", Node: "n", Status: "running", Type: "qemu", VMID: 100, Mem: -5}
	want, _ := json.Marshal(odd)
	if got := odd.appendJSON(nil); !bytes.Equal(got, want) {
		t.Errorf("odd item:\n%s\nwant\n%s", got, want)
	}
	for _, v := range []float64{0, 0.25, 1e-6, 123456.5, 1e21, -3.5e-9} {
		want, _ := json.Marshal(v)
		if got := appendFloatMember(nil, "x", v); string(got) != `"x":`+string(want) {
			t.Errorf("float %v: %s, want %s", v, got, want)
		}
	}
}
