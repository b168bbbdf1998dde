package sim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFaultNoAudit: a token without the audit privilege sees only the
// tasks it started, on both products and in /cluster/tasks, and
// /access/permissions does not list Sys.Audit for it.
func TestFaultNoAudit(t *testing.T) {
	runInBubble(t, Config{Seed: 47, PVEClusters: 1, PBSServers: 1, History: 48 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		for _, tc := range []struct{ remote, node, query, permPath string }{
			{"pve-c001", "pve-c001-n1", "source=all&limit=5000", "/"},
			{"pbs001", "", "limit=0", "/system/tasks"},
		} {
			token := f.Remotes()[0].TokenID
			for _, r := range f.Remotes() {
				if r.ID == tc.remote {
					token = r.TokenID
				}
			}
			all, _ := c.list(tc.remote, tc.node, tc.query)
			if !hasSysAudit(t, c, tc.remote, tc.node, tc.permPath) {
				t.Fatalf("%s: a healthy token lacks Sys.Audit on %s", tc.remote, tc.permPath)
			}
			others := 0
			for _, it := range all {
				if u := it.User; u != token && u+"!"+it.TokenID != token {
					others++
				}
			}
			if others == 0 {
				t.Fatalf("%s: no task of other users to hide", tc.remote)
			}
			f.SetFault(tc.remote, "", Fault{NoAudit: true})
			own, _ := c.list(tc.remote, tc.node, tc.query)
			if len(own) != len(all)-others {
				t.Errorf("%s: %d tasks without audit, want the token's own %d of %d", tc.remote, len(own), len(all)-others, len(all))
			}
			for _, it := range own {
				if it.User != token && it.User+"!"+it.TokenID != token {
					t.Errorf("%s: task of %s shown to a token without audit", tc.remote, it.User)
				}
			}
			if hasSysAudit(t, c, tc.remote, tc.node, tc.permPath) {
				t.Errorf("%s: /access/permissions lists Sys.Audit under the NoAudit fault", tc.remote)
			}
			f.SetFault(tc.remote, "", Fault{})
		}
		// The answer is kept while nothing changes: the fault must still
		// show in it, and its end too.
		clusterTasks := func() []item {
			var items []item
			if err := json.Unmarshal(c.getOK("pve-c001", "", "/api2/json/cluster/tasks").Data, &items); err != nil {
				t.Fatal(err)
			}
			return items
		}
		before := clusterTasks()
		f.SetFault("pve-c001", "", Fault{NoAudit: true})
		cluster := clusterTasks()
		for _, it := range cluster {
			if it.User+"!"+it.TokenID != "taskfleet@pve!poll" {
				t.Errorf("/cluster/tasks shows a task of %s to a token without audit", it.User)
			}
		}
		if len(cluster) >= len(before) {
			t.Errorf("/cluster/tasks: %d tasks without audit, %d with it", len(cluster), len(before))
		}
		f.SetFault("pve-c001", "", Fault{})
		if after := clusterTasks(); len(after) != len(before) {
			t.Errorf("/cluster/tasks: %d tasks once audit is back, %d before", len(after), len(before))
		}
	})
}

func hasSysAudit(t *testing.T, c *testClient, remote, node, path string) bool {
	t.Helper()
	var perms map[string]map[string]any
	if err := json.Unmarshal(c.getOK(remote, node, "/api2/json/access/permissions?"+q("path", path)).Data, &perms); err != nil {
		t.Fatal(err)
	}
	v, ok := perms[path]["Sys.Audit"]
	return ok && v != false && v != float64(0)
}

// TestCertFile: a fleet started again with the same certificate file
// presents the same certificates, so a configuration written for the
// first run stays valid; a damaged file is an error, not new certificates.
func TestCertFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certs.pem")
	fingerprints := func() []string {
		f, err := New(Config{Seed: 1, PVEClusters: 2, PBSServers: 1, CertFile: path, InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range f.Remotes() {
			for _, e := range r.Endpoints {
				out = append(out, e.Fingerprint)
			}
		}
		return out
	}
	first, second := fingerprints(), fingerprints()
	if len(first) != 7 {
		t.Fatalf("%d endpoints, want 7", len(first))
	}
	for i := range first {
		if first[i] != second[i] {
			t.Errorf("endpoint %d: fingerprint %s after a restart, was %s", i, second[i], first[i])
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("certificate file: %v, mode %v; want 0600", err, fi.Mode())
	}
	// A larger fleet keeps the certificates of the nodes at the same
	// address (the PBS moves: PVE clusters take the first addresses).
	f, err := New(Config{Seed: 1, PVEClusters: 3, PBSServers: 1, CertFile: path, InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Remotes() {
		if r.ID == "pve-c001" && r.Endpoints[0].Fingerprint != first[1] {
			t.Errorf("grown fleet: pve-c001's first fingerprint %s, was %s", r.Endpoints[0].Fingerprint, first[1])
		}
	}
	if err := os.WriteFile(path, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{PVEClusters: 1, CertFile: path, InMemory: true}); err == nil {
		t.Error("a damaged certificate file was replaced silently")
	}
}
