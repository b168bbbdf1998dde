package proxmox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/taskfleet/taskfleet/task"
)

// Benchmarks of the client's hot path: decoding a task-list page (every
// fetched task goes through decodeList and parseItem) and one whole list
// request on a reused TLS connection.

// benchPage returns a task list body of n items as the product sends it:
// PVE's items carry node, pid, pstart, type, id and user besides the
// UPID; the first tenth are running.
func benchPage(kind task.Kind, n int) []byte {
	items := make([]map[string]any, n)
	start := int64(1_700_000_000)
	for i := range items {
		st := start - int64(i)*37
		var upid string
		if kind == task.PBS {
			upid = fmt.Sprintf(`UPID:backup1:%08X:%08X:%08X:%08X:backup:store1\x3avm-%d:backup@pbs!pve-1:`, 3000+i, 90000, i, st, 100+i%50)
		} else {
			upid = fmt.Sprintf("UPID:pve1:%08X:%08X:%08X:vzdump:%d:root@pam:", 3000+i, 90000+i, st, 100+i%50)
		}
		it := map[string]any{"upid": upid, "node": "pve1", "pid": 3000 + i, "pstart": 90000 + i, "starttime": st,
			"type": "vzdump", "id": fmt.Sprint(100 + i%50), "user": "root@pam"}
		if i >= n/10 {
			it["endtime"] = st + 30
			it["status"] = "OK"
		} else {
			it["status"] = "RUNNING"
		}
		items[i] = it
	}
	body, err := json.Marshal(map[string]any{"data": items, "total": n})
	if err != nil {
		panic(err)
	}
	return body
}

// BenchmarkDecodeList decodes one page of 500 items (the default page
// size) into tasks.
func BenchmarkDecodeList(b *testing.B) {
	for _, kind := range []task.Kind{task.PVE, task.PBS} {
		b.Run(kind.String()+"-500", func(b *testing.B) {
			body := benchPage(kind, 500)
			c := newTestClient(b, testConfig(kind, Endpoint{URL: "https://127.0.0.1:8006"}))
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				pb := c.newPageBuilder("pve1", "bench")
				total, err := decodeList(jsontext.NewDecoder(bytes.NewReader(body), textOptions...), pb.add)
				if err != nil || total != 500 {
					b.Fatalf("decodeList = %d, %v", total, err)
				}
				if p := pb.finish(total); len(p.Tasks) != 500 {
					b.Fatalf("%d tasks, %d skipped", len(p.Tasks), len(p.Skipped))
				}
			}
			b.ReportMetric(float64(500*b.N)/time.Since(start).Seconds(), "tasks/s")
		})
	}
}

// BenchmarkListTasks requests one page from a loopback TLS server on a
// reused connection: request, status line, body, decode. "50" is a
// steady-state poll's page, "500" a backfill page (both uncompressed).
func BenchmarkListTasks(b *testing.B) {
	for _, n := range []int{50, 500} {
		b.Run(fmt.Sprintf("pve-%d", n), func(b *testing.B) {
			body := benchPage(task.PVE, n)
			srv := startTLS(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(body)
			}))
			c := newTestClient(b, testConfig(task.PVE, srv.endpoint()))
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				p, err := c.ListTasks(ctx, "pve1", ListQuery{Limit: n})
				if err != nil || len(p.Tasks) != n {
					b.Fatalf("ListTasks = %d tasks, %v", len(p.Tasks), err)
				}
			}
		})
	}
}
