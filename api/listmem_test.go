package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/task"
)

// genBackend serves n generated tasks, newest first, without holding
// them: StreamTasks makes each as the iterator asks for it, so the only
// memory a list needs is the API's own.
type genBackend struct {
	*fakeBackend
	n int
}

var (
	genRemotes = func() (out []string) {
		for i := range 100 {
			out = append(out, fmt.Sprintf("pve-r%03d", i))
		}
		return out
	}()
	genIDs = func() (out []string) {
		for i := range 500 {
			out = append(out, strconv.Itoa(100+i))
		}
		return out
	}()
	genNodes = []string{"pve1", "pve2", "pve3", "pve4"}
)

func genTask(i int) task.Task {
	start := int64(1_780_000_000 - i)
	return task.Task{
		Remote: genRemotes[i%len(genRemotes)],
		UPID: task.UPID{Kind: task.PVE, Node: genNodes[i%len(genNodes)], PID: uint32(1000 + i), PStart: uint64(50_000 + i),
			StartTime: start, Type: "vzdump", ID: genIDs[i%len(genIDs)], User: "root@pam"},
		EndTime: start + 90,
		Status:  "OK",
	}
}

func (b *genBackend) StreamTasks(_ context.Context, f task.Filter) (int, iter.Seq[task.Task], error) {
	if f.Limit != 0 || f.Start != 0 {
		return 0, nil, fmt.Errorf("genBackend serves limit=0 only")
	}
	return b.n, func(yield func(task.Task) bool) {
		for i := range b.n {
			if !yield(genTask(i)) {
				return
			}
		}
	}, nil
}

// liveHeap is the heap marked live by the latest GC.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapWatch samples the live heap until stop and returns the largest
// value seen.
func heapWatch() (stop func() uint64) {
	quit := make(chan struct{})
	var peak uint64
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, liveHeap())
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 { close(quit); wg.Wait(); return max(peak, liveHeap()) }
}

// TestListStreamMemory: limit=0 over 1M tasks, served over a loopback
// socket, grows the live heap by less than 16 MiB (the buffered list it
// replaces needed about 0.5 GB). The live heap is what each GC during the
// answer found reachable; garbage between GCs does not count.
func TestListStreamMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("encodes 1M tasks: not with -short or -race")
	}
	const n = 1_000_000
	srv := newLoopbackServer(t, New(&genBackend{fakeBackend: newFake(t), n: n}, Options{Logger: zerolog.Nop()}))
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	runtime.GC()
	base := liveHeap()
	stop := heapWatch()
	resp, err := c.Get(srv.URL + "/api2/json/remotes/tasks/list?limit=0")
	if err != nil {
		t.Fatal(err)
	}
	var tail tailCounter
	_, err = io.Copy(&tail, resp.Body)
	resp.Body.Close()
	runtime.GC()
	peak := stop()
	// One task per line, then the end of the envelope.
	if want := fmt.Sprintf(`],"total":%d}`+"\n", n); err != nil || tail.lines != n+1 || string(tail.last) != want {
		t.Fatalf("answer: %v, %d lines ending %q; want %d lines ending %q", err, tail.lines, tail.last, n+1, want)
	}
	growth := float64(peak-min(base, peak)) / (1 << 20)
	t.Logf("live heap: %.1f MiB before, peak growth %.1f MiB while streaming %d tasks", float64(base)/(1<<20), growth, n)
	if growth > 16 {
		t.Errorf("live heap grew by %.1f MiB, want at most 16", growth)
	}
}

// tailCounter counts the lines written to it and keeps the last 64 bytes.
type tailCounter struct {
	lines int
	last  []byte
}

func (c *tailCounter) Write(b []byte) (int, error) {
	c.lines += bytes.Count(b, []byte{'\n'})
	c.last = append(c.last, b[max(0, len(b)-64):]...)
	c.last = c.last[max(0, len(c.last)-64):]
	if i := bytes.LastIndexByte(c.last, ']'); i >= 0 {
		c.last = c.last[i:]
	}
	return len(b), nil
}
