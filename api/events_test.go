package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/events"
	"github.com/taskfleet/taskfleet/internal/memnet"
	"github.com/taskfleet/taskfleet/task"
)

// eventsFake is the fake backend with an event hub.
type eventsFake struct {
	*fakeBackend
	hub *events.Hub
}

func (b *eventsFake) Subscribe(ctx context.Context, o events.SubscribeOptions) (*events.Subscription, error) {
	return b.hub.Subscribe(ctx, o)
}

// streamRig is an API server with an event hub fed from a real cache,
// served on an in-memory network inside a synctest bubble.
type streamRig struct {
	t      *testing.T
	hub    *events.Hub
	w      *cache.Writer
	net    *memnet.Network
	srv    *http.Server
	client *http.Client
	url    string
}

func newStreamRig(t *testing.T, opts Options) *streamRig {
	t.Helper()
	w, err := cache.Open(cache.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rg := &streamRig{t: t, hub: events.New(events.Options{}), w: w, net: &memnet.Network{BufferSize: 8 << 10}}
	fake := newFake(t)
	fake.remotes["east"], fake.remotes["west"] = "pve", "pve"
	rg.srv = &http.Server{Handler: New(&eventsFake{fakeBackend: fake, hub: rg.hub}, opts)}
	ln, err := rg.net.Listen("127.0.0.1:8087")
	if err != nil {
		t.Fatal(err)
	}
	go rg.srv.Serve(ln)
	rg.client = &http.Client{Transport: &http.Transport{DialContext: rg.net.DialContext, MaxConnsPerHost: 0, MaxIdleConnsPerHost: 200}}
	rg.url = "http://127.0.0.1:8087"
	t.Cleanup(func() {
		rg.srv.Close()
		rg.client.CloseIdleConnections()
		rg.hub.Close()
		rg.w.Close()
		rg.net.Close()
	})
	return rg
}

// apply applies a batch and publishes it, as the cache writer does.
func (rg *streamRig) apply(tasks ...task.Task) {
	rg.t.Helper()
	prev := rg.w.Latest().Load()
	if err := rg.w.Apply(cache.Batch{Remote: tasks[0].Remote, Tasks: tasks}); err != nil {
		rg.t.Fatal(err)
	}
	rg.hub.Publish(events.Published{Prev: prev, Next: rg.w.Latest().Load(), Remote: tasks[0].Remote, Tasks: tasks})
}

// open starts a stream; header adds request headers.
func (rg *streamRig) open(query string, header map[string]string) *http.Response {
	rg.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rg.url+pathEvents+query, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := rg.client.Do(req)
	if err != nil {
		rg.t.Fatal(err)
	}
	return resp
}

// sseEvent is one event as a client parses it.
type sseEvent struct {
	id   string
	name string
	data string
}

// readEvents parses a stream, calling fn per event until fn returns false
// or the stream ends.
func readEvents(resp *http.Response, fn func(sseEvent) bool) {
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var e sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if e.name != "" && !fn(e) {
				return
			}
			e = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			e.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			e.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			e.data = line[6:]
		}
	}
}

func streamTask(remote string, pid uint32, start int64, status string) task.Task {
	t := task.Task{Remote: remote, UPID: task.UPID{Kind: task.PVE, Node: "pve1", PID: pid, PStart: 777, StartTime: start, Type: "vzdump", ID: "100", User: "root@pam"}}
	if status != "" {
		t.EndTime, t.Status = start+5, status
	}
	return t
}

// TestEventStreamSlowClient is the acceptance test over HTTP: 100 clients
// of a scoped token, one of them stalled (it never reads). The other 99
// get each change of their remote within 1 s of the cache publishing it,
// in order; the stalled one is dropped; the writer is never held up.
func TestEventStreamSlowClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rg := newStreamRig(t, Options{Tokens: []Token{{ID: "team", Secret: "team-secret", Remotes: []string{"east"}}}})
		auth := map[string]string{"Authorization": "Bearer team-secret"}
		const clients, changes = 100, 300
		var mu sync.Mutex
		published := map[uint32]time.Time{}
		var wg sync.WaitGroup
		failures := make(chan string, clients)
		worst := make([]time.Duration, clients)
		ready := make(chan struct{}, clients)
		stalled := rg.open("", auth)
		if stalled.StatusCode != http.StatusOK || stalled.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, type %q", stalled.StatusCode, stalled.Header.Get("Content-Type"))
		}
		for i := 1; i < clients; i++ {
			resp := rg.open("", auth)
			wg.Go(func() {
				want := uint32(1)
				readEvents(resp, func(e sseEvent) bool {
					if e.name == "hello" {
						ready <- struct{}{}
						return true
					}
					var d EventData
					if err := json.Unmarshal([]byte(e.data), &d); err != nil {
						failures <- fmt.Sprintf("client %d: %v", i, err)
						return false
					}
					u := mustUPID(t, d.Task.UPID[strings.Index(d.Task.UPID, "!")+1:])
					mu.Lock()
					worst[i] = max(worst[i], time.Since(published[u.PID]))
					mu.Unlock()
					if e.name != "started" || u.PID != want || !strings.HasPrefix(d.Task.UPID, "pve:east!") {
						failures <- fmt.Sprintf("client %d: got %s %s, want started of pid %d on east", i, e.name, d.Task.UPID, want)
						return false
					}
					want++
					return want <= changes
				})
				if want != changes+1 {
					failures <- fmt.Sprintf("client %d: got %d changes, want %d", i, want-1, changes)
				}
			})
		}
		for range clients - 1 {
			<-ready
		}
		start := time.Now().Unix()
		for i := uint32(1); i <= changes; i++ {
			mu.Lock()
			published[i] = time.Now()
			mu.Unlock()
			began := time.Now()
			rg.apply(streamTask("east", i, start+int64(i), ""))
			rg.apply(streamTask("west", i, start+int64(i), "")) // outside the token's scope
			if d := time.Since(began); d > 0 {
				t.Fatalf("publishing took %v of the writer's time: the hub must never block it", d)
			}
			time.Sleep(20 * time.Millisecond)
		}
		wg.Wait()
		close(failures)
		for f := range failures {
			t.Error(f)
		}
		for i, w := range worst[1:] {
			if w > time.Second {
				t.Errorf("client %d: a change arrived %v after it was published, want within 1s", i+1, w)
			}
		}
		// The stalled client was dropped: its stream ends after what was
		// buffered, short of the changes.
		time.Sleep(2 * eventWriteTimeout)
		got := 0
		readEvents(stalled, func(e sseEvent) bool {
			if e.name == "started" {
				got++
			}
			return true
		})
		if got >= changes {
			t.Errorf("stalled client got all %d changes: it was not dropped", got)
		}
		if st := rg.hub.Stats(); st.Dropped != 1 {
			t.Errorf("hub dropped %d subscribers, want 1", st.Dropped)
		}
	})
}

// TestEventStreamResume: a client reconnecting with Last-Event-ID inside
// the ring misses nothing; one from before the ring is told to reload.
func TestEventStreamResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rg := newStreamRig(t, Options{})
		start := time.Now().Unix()
		resp := rg.open("?typefilter=vzdump", nil)
		var lastID string
		n := 0
		ready := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			readEvents(resp, func(e sseEvent) bool {
				if e.name == "hello" {
					var h HelloData
					json.Unmarshal([]byte(e.data), &h)
					if h.LastID != e.id || h.Resumed {
						t.Errorf("hello %+v with id %q", h, e.id)
					}
					close(ready)
					return true
				}
				lastID = e.id
				n++
				return n < 3 // the client goes away after 3 events
			})
		}()
		<-ready
		for i := uint32(1); i <= 10; i++ {
			rg.apply(streamTask("east", i, start+int64(i), ""))
		}
		<-done
		for i := uint32(1); i <= 4; i++ {
			rg.apply(streamTask("east", i, start+int64(i), "OK"))
		}
		synctest.Wait()
		var got []string
		again := rg.open("?typefilter=vzdump", map[string]string{"Last-Event-ID": lastID})
		readEvents(again, func(e sseEvent) bool {
			if e.name == "hello" {
				return true
			}
			var d EventData
			json.Unmarshal([]byte(e.data), &d)
			u := mustUPID(t, d.Task.UPID[strings.Index(d.Task.UPID, "!")+1:])
			got = append(got, e.name+strconv.Itoa(int(u.PID)))
			return len(got) < 11
		})
		want := "started4 started5 started6 started7 started8 started9 started10 finished1 finished2 finished3 finished4"
		if strings.Join(got, " ") != want {
			t.Errorf("resumed: got %s\nwant %s", strings.Join(got, " "), want)
		}
		old := rg.open("", map[string]string{"Last-Event-ID": "12"})
		readEvents(old, func(e sseEvent) bool {
			if e.name == "hello" {
				return true
			}
			if e.name != "reload" {
				t.Errorf("resume from before the ring: got %s, want reload", e.name)
			}
			return false
		})
	})
}

func TestEventStreamErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rg := newStreamRig(t, Options{Tokens: []Token{{ID: "team", Secret: "team-secret", Remotes: []string{"east"}}}})
		auth := map[string]string{"Authorization": "Bearer team-secret"}
		for _, c := range []struct {
			query  string
			header map[string]string
			status int
			want   string
		}{
			{"", nil, http.StatusUnauthorized, "authentication required"},
			{"?limit=5", auth, http.StatusBadRequest, "not a parameter of the event stream"},
			{"?remote=west", auth, http.StatusForbidden, "may not access remote"},
			{"?statusfilter=bad", auth, http.StatusBadRequest, "enumeration"},
			{"", map[string]string{"Authorization": "Bearer team-secret", "Last-Event-ID": "x1"}, http.StatusBadRequest, "Last-Event-ID"},
		} {
			resp := rg.open(c.query, c.header)
			var body strings.Builder
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				body.WriteString(sc.Text())
			}
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(body.String(), c.want) {
				t.Errorf("%s %v: got %d %s, want %d with %q", c.query, c.header, resp.StatusCode, body.String(), c.status, c.want)
			}
		}
	})
}

func TestEventStreamNotImplemented(t *testing.T) {
	get(t, New(newFake(t), Options{}), pathEvents).wantStatus(t, http.StatusNotImplemented)
}

// TestEventStreamHeartbeat: an idle stream gets a comment line every
// heartbeatEvery, and the stream ends when the hub closes.
func TestEventStreamHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rg := newStreamRig(t, Options{})
		resp := rg.open("", nil)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		began := time.Now()
		beats := 0
		for sc.Scan() {
			if sc.Text() == ": heartbeat" {
				beats++
				if beats == 2 {
					break
				}
			}
		}
		if d := time.Since(began); beats != 2 || d != 2*heartbeatEvery {
			t.Errorf("%d heartbeats after %v, want 2 after %v", beats, d, 2*heartbeatEvery)
		}
		rg.hub.Close()
		for sc.Scan() {
		}
		if time.Since(began) != 2*heartbeatEvery {
			t.Error("the stream did not end when the hub closed")
		}
	})
}
