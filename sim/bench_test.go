package sim

import (
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"testing"
	"time"
)

// BenchmarkFleet5000 builds, starts (in memory), faults and closes a fleet
// of 5000 remotes (4000 PVE clusters of 3 nodes, 1000 PBS servers).
func BenchmarkFleet5000(b *testing.B) {
	for b.Loop() {
		start := time.Now()
		f, err := New(Config{Seed: 1, PVEClusters: 4000, PBSServers: 1000, InMemory: true, History: 24 * time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		created := time.Since(start)
		if err := f.Start(); err != nil {
			b.Fatal(err)
		}
		started := time.Since(start)
		f.SetFaultAll(Fault{Latency: 50 * time.Millisecond, ConnectLatency: 150 * time.Millisecond})
		faulted := time.Since(start)
		f.Close()
		b.ReportMetric(float64(created.Milliseconds()), "ms-new")
		b.ReportMetric(float64((started - created).Milliseconds()), "ms-start")
		b.ReportMetric(float64((faulted - started).Milliseconds()), "ms-setfaultall")
	}
}

// BenchmarkTaskListPage measures one PVE task list page of 50 items, over
// TLS on the in-memory network, on a reused connection.
func BenchmarkTaskListPage(b *testing.B) {
	f, err := New(Config{Seed: 1, PVEClusters: 1, InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Start(); err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	c := newTestClient(b, f)
	defer c.close()
	for b.Loop() {
		if r := c.get("pve-c001", "pve-c001-n1", "/api2/json/nodes/pve-c001-n1/tasks?source=all&limit=50"); r.status != 200 {
			b.Fatal(r.status)
		}
	}
}

// BenchmarkGenerateDay measures generating one day of one PVE node.
func BenchmarkGenerateDay(b *testing.B) {
	p := newProfile(1, 1, "pve-c001", "pve-c001-n1", 1, DefaultTaskRate)
	d := int64(20000)
	n := 0
	for b.Loop() {
		n += len(p.generate(d))
		d++
	}
	b.ReportMetric(float64(n)/float64(b.N), "tasks/op")
}

func ExampleFleet() {
	f, err := New(Config{Seed: 1, PVEClusters: 2, PBSServers: 1, InMemory: true})
	if err != nil {
		panic(err)
	}
	if err := f.Start(); err != nil {
		panic(err)
	}
	defer f.Close()
	for _, r := range f.Remotes() {
		fmt.Println(r.ID, r.Kind, r.TokenID, r.Nodes, r.Endpoints[0].URL)
	}
	// Output:
	// pbs001 pbs taskfleet@pbs!poll [pbs001] https://127.0.1.7:8007
	// pve-c001 pve taskfleet@pve!poll [pve-c001-n1 pve-c001-n2 pve-c001-n3] https://127.0.1.1:8006
	// pve-c002 pve taskfleet@pve!poll [pve-c002-n1 pve-c002-n2 pve-c002-n3] https://127.0.1.4:8006
}

// BenchmarkBackupTruth: the backup ground truth of the demo's fleet (20
// clusters of 3 nodes, 5 PBS servers, 30 tasks an hour) over 7 days.
func BenchmarkBackupTruth(b *testing.B) {
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	f, err := New(Config{Seed: 1, PVEClusters: 20, PBSServers: 5, TaskRate: 30, Now: newFixedClock(at).Now})
	if err != nil {
		b.Fatal(err)
	}
	rows := 0
	for b.Loop() {
		rows = len(f.BackupTruth(at))
	}
	b.ReportMetric(float64(rows), "guests")
}

// BenchmarkGzipGuestList compresses a 3-node cluster's guest list (the
// largest answer of a sweep) at BestSpeed with the standard library and
// with klauspost/compress, which the simulator uses.
func BenchmarkGzipGuestList(b *testing.B) {
	f := newFleet(b, Config{Seed: 1, PVEClusters: 1, InMemory: true})
	if err := f.Start(); err != nil {
		b.Fatal(err)
	}
	c := newTestClient(b, f)
	defer c.close()
	r := c.get("pve-c001", "pve-c001-n1", "/api2/json/cluster/resources?type=vm")
	if r.status != 200 {
		b.Fatal(r.status)
	}
	body := r.body
	stdWriter, _ := stdgzip.NewWriterLevel(nil, stdgzip.BestSpeed)
	for _, tc := range []struct {
		name string
		gzip func([]byte) []byte
	}{
		{"stdlib", func(p []byte) []byte { // a reused writer, as the pool does
			var out bytes.Buffer
			stdWriter.Reset(&out)
			stdWriter.Write(p)
			stdWriter.Close()
			return out.Bytes()
		}},
		{"klauspost", gzipBytes},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			var n int
			for b.Loop() {
				n = len(tc.gzip(body))
			}
			b.ReportMetric(float64(n), "B-compressed")
		})
	}
}
