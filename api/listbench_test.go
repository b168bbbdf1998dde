package api

import (
	"context"
	"encoding/json"
	"io"
	"iter"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/cache/synth"
	"github.com/taskfleet/taskfleet/task"
)

// The list benchmark serves limit=0 over a cache of 1M synthetic tasks
// (cache/synth: 1000 remotes, 7 days) over a loopback socket, streamed
// (this package) and buffered (the code it replaced: the page as a slice,
// the answer marshalled into one buffer), in one run:
//
//	go test -run '^$' -bench BenchmarkList1M -benchtime 1x ./api/
//
// Results are in docs/benchmarks.md.

var benchList struct {
	once sync.Once
	dir  string
	w    *cache.Writer
	err  error
}

// benchSnapshot returns the 1M-task snapshot, built once.
func benchSnapshot(b *testing.B) *cache.Snapshot {
	benchList.once.Do(func() {
		dir, err := os.MkdirTemp("", "taskfleet-api-bench-")
		if err != nil {
			benchList.err = err
			return
		}
		benchList.dir = dir
		end := synth.End.Unix()
		w, err := cache.Open(cache.Options{Dir: dir, Now: func() time.Time { return time.Unix(end-1, 0) }, JournalMaxBytes: 1 << 40})
		if err != nil {
			benchList.err = err
			return
		}
		benchList.w = w
		byRemote := map[string][]task.Task{}
		for _, t := range synth.Synthetic(1_000_000, 1000, 7, 1) {
			byRemote[t.Remote] = append(byRemote[t.Remote], t)
		}
		for _, r := range slices.Sorted(func(yield func(string) bool) {
			for r := range byRemote {
				if !yield(r) {
					return
				}
			}
		}) {
			if err := w.Apply(cache.Batch{Remote: r, Tasks: byRemote[r]}); err != nil {
				benchList.err = err
				return
			}
		}
		benchList.err = w.ApplyJournal()
	})
	if benchList.err != nil {
		b.Fatal(benchList.err)
	}
	return benchList.w.Latest().Load()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchList.w != nil {
		benchList.w.Close()
	}
	if benchList.dir != "" {
		os.RemoveAll(benchList.dir)
	}
	os.Exit(code)
}

// snapshotBackend serves a cache snapshot: Tasks with Query, StreamTasks
// with Stream.
type snapshotBackend struct {
	*fakeBackend
	snap *cache.Snapshot
}

func (b *snapshotBackend) Tasks(_ context.Context, f task.Filter) (task.Page, error) {
	return b.snap.Query(f), nil
}

func (b *snapshotBackend) StreamTasks(_ context.Context, f task.Filter) (int, iter.Seq[task.Task], error) {
	total, tasks := b.snap.Stream(f)
	return total, tasks, nil
}

// bufferedList is the list endpoint as it was before streaming: the page
// as a slice, the items as a slice, the answer marshalled in one buffer.
func bufferedList(snap *cache.Snapshot) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := snap.Query(task.Filter{})
		items := make([]TaskListItem, 0, len(page.Tasks))
		for _, t := range page.Tasks {
			items = append(items, NewTaskListItem(t))
		}
		total := page.Total
		body, err := json.Marshal(envelope{Data: items, Total: &total})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		body = append(body, '\n')
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
}

// heapObjects is the heap in use, garbage included.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// firstByteReader records when the first byte of a body arrives.
type firstByteReader struct {
	r     io.Reader
	first time.Time
}

func (f *firstByteReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && f.first.IsZero() {
		f.first = time.Now()
	}
	return n, err
}

func BenchmarkList1M(b *testing.B) {
	snap := benchSnapshot(b)
	n := snap.Len()
	for _, c := range []struct {
		name string
		h    http.Handler
		gzip bool
	}{
		{"buffered", bufferedList(snap), false},
		{"streamed", New(&snapshotBackend{fakeBackend: newFake(b), snap: snap}, Options{Logger: zerolog.Nop()}), false},
		{"streamed-gzip", New(&snapshotBackend{fakeBackend: newFake(b), snap: snap}, Options{Logger: zerolog.Nop()}), true},
	} {
		b.Run(c.name, func(b *testing.B) {
			srv := newLoopbackServer(b, c.h)
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr}
			var ttfb, total time.Duration
			var liveGrowth, peakGrowth uint64
			var size int64
			runs := 0
			for b.Loop() {
				runtime.GC()
				baseLive, baseObjects := liveHeap(), heapObjects()
				stopLive := heapWatch()
				var peakObjects uint64
				quit := make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() {
					t := time.NewTicker(2 * time.Millisecond)
					defer t.Stop()
					for {
						peakObjects = max(peakObjects, heapObjects())
						select {
						case <-quit:
							return
						case <-t.C:
						}
					}
				})
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api2/json/remotes/tasks/list?limit=0", nil)
				if c.gzip {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				start := time.Now()
				resp, err := cl.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				fb := &firstByteReader{r: resp.Body}
				m, err := io.Copy(io.Discard, fb)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d, %v", resp.StatusCode, err)
				}
				total += time.Since(start)
				ttfb += fb.first.Sub(start)
				close(quit)
				wg.Wait()
				peakLive := stopLive()
				liveGrowth = max(liveGrowth, peakLive-min(peakLive, baseLive))
				peakGrowth = max(peakGrowth, peakObjects-min(peakObjects, baseObjects))
				size = m
				runs++
			}
			b.ReportMetric(float64(liveGrowth)/(1<<20), "live-heap-growth-MiB")
			b.ReportMetric(float64(peakGrowth)/(1<<20), "peak-heap-growth-MiB")
			b.ReportMetric(float64(ttfb.Milliseconds())/float64(runs), "ttfb-ms")
			b.ReportMetric(float64(n)*float64(runs)/total.Seconds(), "tasks/s")
			b.ReportMetric(float64(size)/(1<<20), "body-MiB")
		})
	}
}
