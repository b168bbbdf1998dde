package notify

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/events"
	"github.com/taskfleet/taskfleet/internal/memnet"
	"github.com/taskfleet/taskfleet/notify/tmpl"
	"github.com/taskfleet/taskfleet/task"
)

// recorder is a webhook receiver that answers 503 while down.
type recorder struct {
	mu       sync.Mutex
	down     bool
	delay    time.Duration // before each answer
	requests int
	msgs     []tmpl.Message // delivered
	headers  []http.Header
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var m tmpl.Message
	body, _ := io.ReadAll(req.Body)
	if err := json.Unmarshal(body, &m); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	delay := r.delay
	r.mu.Unlock()
	select {
	case <-time.After(delay):
	case <-req.Context().Done():
		return // the sender gave up: not delivered
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if r.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	r.msgs = append(r.msgs, m)
	r.headers = append(r.headers, req.Header.Clone())
}

func (r *recorder) delivered() (msgs []tmpl.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(msgs, r.msgs...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

func (r *recorder) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// rig is a cache, an events hub and a webhook receiver in the calling
// synctest bubble; start runs notifiers over them.
type rig struct {
	t      *testing.T
	dir    string
	w      *cache.Writer
	hub    *events.Hub
	hooks  *memnet.Network
	rcv    *recorder
	target config.Notify
	guests GuestSource
	met    *Metrics
	buffer int
}

func newRig(t *testing.T) *rig {
	t.Helper()
	// protoactor's dead-letter throttle keeps a goroutine for a second
	// after a dead letter (a stopped actor's Terminated): let it end
	// before the bubble does.
	t.Cleanup(func() { time.Sleep(2 * time.Second) })
	dir := t.TempDir()
	w, err := cache.Open(cache.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	hub := events.New(events.Options{})
	t.Cleanup(hub.Close)
	r := &rig{t: t, dir: dir, w: w, hub: hub, hooks: &memnet.Network{}, rcv: &recorder{}, met: NewMetrics(nil)}
	ln, err := r.hooks.Listen("hooks.test:80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r.rcv}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-served; r.hooks.Close() })
	body, err := tmpl.Parse("body", "{{json .}}")
	if err != nil {
		t.Fatal(err)
	}
	r.target = config.Notify{Name: "hook", Kind: config.NotifyWebhook, URL: "http://hooks.test/alerts/s3cr3t-t0ken", Method: "POST", Body: body,
		Headers:     []config.Header{{Name: "Authorization", Value: "Bearer tk_0123456789"}},
		GroupWindow: 30 * time.Second, Queue: 100, Timeout: 30 * time.Second,
		Rules: []config.NotifyRule{{Type: "vzdump", Status: task.StatusSet(0).Add(task.StatusError)}}}
	return r
}

func (r *rig) start() *Notifiers {
	r.t.Helper()
	ns, err := Start(Options{Targets: []config.Notify{r.target}, CacheDir: r.dir, Hub: r.hub, Snapshot: r.w.Latest().Load,
		Guests: r.guests, StaleEvery: time.Hour, Metrics: r.met, buffer: r.buffer,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return r.hooks.DialContext(ctx, network, addr)
		}})
	if err != nil {
		r.t.Fatal(err)
	}
	return ns
}

// apply adds tasks to the cache; publish: and hands the change to the hub.
func (r *rig) apply(publish bool, tasks ...task.Task) {
	r.t.Helper()
	prev := r.w.Latest().Load()
	if err := r.w.Apply(cache.Batch{Remote: "east", Tasks: tasks}); err != nil {
		r.t.Fatal(err)
	}
	if publish {
		r.hub.Publish(events.Published{Prev: prev, Next: r.w.Latest().Load(), Remote: "east", Tasks: tasks})
	}
}

// mkTask returns a task of remote "east" of type typ ended a minute after
// start with status.
func mkTask(pid uint32, start int64, typ, status string) task.Task {
	return task.Task{Remote: "east", EndTime: start + 60, Status: status,
		UPID: task.UPID{Kind: task.PVE, Node: "pve1", PID: pid, PStart: 4242, StartTime: start, Type: typ, ID: "100", User: "root@pam"}}
}

func upids(msgs []tmpl.Message) []string {
	var out []string
	for _, m := range msgs {
		for _, t := range m.Tasks {
			out = append(out, t.UPID)
		}
	}
	return out
}

// TestBurstIsOneMessage: a burst of failures is one message after the
// window; tasks that match no rule are not sent; a receiver that is down
// gets the same message again with backoff; the queue's bound drops and
// counts what does not fit, and the message says so.
func TestBurstIsOneMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.target.Queue = 3
		ns := r.start()
		defer ns.Stop()
		synctest.Wait()
		r.rcv.setDown(true)
		now := time.Now().Unix()
		r.apply(true, mkTask(1, now-60, "vzdump", "job errors"), mkTask(2, now-60, "vzdump", "OK"), mkTask(3, now-60, "qmstart", "failed"))
		time.Sleep(5 * time.Second)
		r.apply(true, mkTask(4, now-55, "vzdump", "job errors"), mkTask(5, now-55, "vzdump", "job errors"), mkTask(6, now-55, "vzdump", "job errors"))
		time.Sleep(24 * time.Second)
		synctest.Wait()
		if n := r.rcv.count(); n != 0 {
			t.Fatalf("%d requests before the window closed, want 0", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := r.rcv.count(); n != 1 {
			t.Fatalf("%d requests after the window, want 1", n)
		}
		time.Sleep(10 * time.Minute)
		if n := r.rcv.count(); n < 3 || n > 8 {
			t.Fatalf("%d requests in 10 minutes of backoff", n)
		}
		r.rcv.setDown(false)
		time.Sleep(15 * time.Minute)
		msgs := r.rcv.delivered()
		if len(msgs) != 1 {
			t.Fatalf("%d messages, want 1", len(msgs))
		}
		got := strings.Join(upids(msgs), " ")
		if len(msgs[0].Tasks) != 3 || msgs[0].Dropped != 1 || !strings.Contains(msgs[0].Text, "1 further matching tasks were dropped") {
			t.Fatalf("message %+v", msgs[0])
		}
		for _, pid := range []string{":00000002:", ":00000003:"} {
			if strings.Contains(got, pid) {
				t.Errorf("task %s matches no rule but was sent", pid)
			}
		}
		if d := testutilDropped(r.met, "hook"); d != 1 {
			t.Errorf("dropped counter %v, want 1", d)
		}
		if h := r.rcv.headers[0].Get("Authorization"); h != "Bearer tk_0123456789" {
			t.Errorf("Authorization %q", h)
		}
	})
}

// TestRestartAndReloadCatchUp: tasks that finished while the notifier was
// stopped are sent after its start, from the cache; a Reload event makes
// it look at the cache again; nothing is sent twice.
func TestRestartAndReloadCatchUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		now := time.Now().Unix()
		r.apply(false, mkTask(1, now-3600, "vzdump", "job errors")) // before the target existed: never sent
		ns := r.start()
		synctest.Wait()
		time.Sleep(time.Second)
		r.apply(true, mkTask(2, now, "vzdump", "job errors"))
		time.Sleep(time.Minute)
		if err := ns.Stop(); err != nil {
			t.Fatal(err)
		}
		r.apply(true, mkTask(3, now+60, "vzdump", "job errors")) // while stopped: no subscriber
		ns = r.start()
		time.Sleep(time.Minute)
		r.apply(false, mkTask(4, now+120, "vzdump", "job errors")) // the change is lost...
		r.hub.Publish(events.Published{Reload: "remote dropped"})  // ...and a Reload announced
		time.Sleep(time.Minute)
		if err := ns.Stop(); err != nil {
			t.Fatal(err)
		}
		ns = r.start() // nothing new: nothing sent
		time.Sleep(time.Minute)
		if err := ns.Stop(); err != nil {
			t.Fatal(err)
		}
		got := upids(r.rcv.delivered())
		if len(got) != 3 || !strings.Contains(got[0], ":00000002:") || !strings.Contains(got[1], ":00000003:") || !strings.Contains(got[2], ":00000004:") {
			t.Fatalf("delivered %q, want tasks 2, 3 and 4 once each", got)
		}
	})
}

// TestStopWaitsForTheDeliveryInFlight: a stop during a delivery that
// succeeds within the grace records it, so the restart sends nothing
// again; one that outlasts the grace is cancelled and sent again.
func TestStopWaitsForTheDeliveryInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.rcv.delay = 2 * time.Second
		ns := r.start()
		synctest.Wait()
		now := time.Now().Unix()
		r.apply(true, mkTask(1, now, "vzdump", "job errors"))
		time.Sleep(31 * time.Second) // the window closed: the delivery is in flight
		if err := ns.Stop(); err != nil {
			t.Fatal(err)
		}
		r.rcv.mu.Lock()
		r.rcv.delay = time.Minute // longer than the grace
		r.rcv.mu.Unlock()
		r.apply(true, mkTask(2, now+10, "vzdump", "job errors"))
		ns = r.start()
		time.Sleep(31 * time.Second)
		if err := ns.Stop(); err != nil { // cancels the delivery of task 2
			t.Fatal(err)
		}
		r.rcv.mu.Lock()
		r.rcv.delay = 0
		r.rcv.mu.Unlock()
		ns = r.start()
		time.Sleep(time.Minute)
		if err := ns.Stop(); err != nil {
			t.Fatal(err)
		}
		got := upids(r.rcv.delivered())
		if len(got) != 2 || !strings.Contains(got[0], ":00000001:") || !strings.Contains(got[1], ":00000002:") {
			t.Fatalf("delivered %q, want task 1 then task 2, once each", got)
		}
	})
}

// TestDroppedSubscriptionResumes: when the hub drops the notifier's
// subscription (its buffer was full), the notifier resumes after the last
// event it saw: every task is delivered, once.
func TestDroppedSubscriptionResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.buffer = 1
		r.target.Queue = 10000
		ns := r.start()
		synctest.Wait()
		now := time.Now().Unix()
		pid := uint32(0)
		for round := 0; round < 20 && r.hub.Stats().Dropped == 0; round++ {
			var batch []task.Task
			for range 50 {
				pid++
				batch = append(batch, mkTask(pid, now+int64(pid), "vzdump", "job errors"))
			}
			r.apply(true, batch...)
			synctest.Wait()
		}
		if r.hub.Stats().Dropped == 0 {
			t.Fatal("the hub never dropped the subscription")
		}
		time.Sleep(2 * time.Minute)
		if err := ns.Stop(); err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, u := range upids(r.rcv.delivered()) {
			seen[u]++
		}
		if len(seen) != int(pid) {
			t.Errorf("%d of %d tasks delivered", len(seen), pid)
		}
		for u, n := range seen {
			if n != 1 {
				t.Errorf("%s delivered %d times", u, n)
			}
		}
		t.Logf("%d tasks, %d subscriptions dropped", pid, r.hub.Stats().Dropped)
	})
}

// fakeGuests is a GuestSource with a settable answer.
type fakeGuests struct {
	mu     sync.Mutex
	guests []StaleGuest
}

func (f *fakeGuests) set(g ...StaleGuest) {
	f.mu.Lock()
	f.guests = g
	f.mu.Unlock()
}

func (f *fakeGuests) StaleGuests(now time.Time, olderThan time.Duration) []StaleGuest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []StaleGuest
	for _, g := range f.guests {
		if now.Sub(g.LastOK) > olderThan {
			out = append(out, g)
		}
	}
	return out
}

// TestStaleGuests: a guest without a good backup for longer than the
// rule's hours is announced once, again only after a good backup and
// another stale period, also across a restart.
func TestStaleGuests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		fg := &fakeGuests{}
		r.guests = fg
		r.target.Rules = nil
		r.target.Stale = []config.NotifyStale{{Hours: 26}}
		start := time.Now()
		fg.set(StaleGuest{Remote: "east", VMID: "100", LastOK: start.Add(-20 * time.Hour)}, StaleGuest{Remote: "east", VMID: "101"})
		ns := r.start()
		time.Sleep(time.Minute)
		if g := r.rcv.delivered(); len(g) != 1 || len(g[0].Stale) != 1 || g[0].Stale[0].VMID != "101" {
			t.Fatalf("at start: %+v", g)
		}
		time.Sleep(7 * time.Hour) // 100 is stale now
		if err := ns.Stop(); err != nil {
			t.Fatal(err)
		}
		ns = r.start()
		time.Sleep(3 * time.Hour)
		g := r.rcv.delivered()
		if len(g) != 2 || len(g[1].Stale) != 1 || g[1].Stale[0].VMID != "100" || g[1].Stale[0].Hours != 26 {
			t.Fatalf("after 7 h: %+v", g)
		}
		fg.set(StaleGuest{Remote: "east", VMID: "100", LastOK: time.Now()}) // backed up (and 101 is gone)
		time.Sleep(2 * time.Hour)
		fg.set(StaleGuest{Remote: "east", VMID: "100", LastOK: time.Now().Add(-2 * time.Hour)})
		time.Sleep(27 * time.Hour)
		if err := ns.Stop(); err != nil {
			t.Fatal(err)
		}
		if g := r.rcv.delivered(); len(g) != 3 || g[2].Stale[0].VMID != "100" {
			t.Fatalf("after a new good backup and 27 h: %d messages", len(g))
		}
	})
}

// TestCorruptStateStartsAfresh: an unreadable state file is moved aside
// and the notifier starts from now.
func TestCorruptStateStartsAfresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		file := stateFile(r.dir, "hook")
		if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(`{"version": 1, "since": `), 0o600); err != nil {
			t.Fatal(err)
		}
		ns := r.start()
		synctest.Wait()
		if err := ns.Stop(); err != nil {
			t.Fatal(err)
		}
		aside, _ := filepath.Glob(file + ".corrupt-*")
		st, err := loadState(file, time.Unix(1, 0))
		if len(aside) != 1 || err != nil || st.Since != time.Now().Unix() {
			t.Fatalf("aside %q, state %+v, %v", aside, st, err)
		}
	})
}

// TestWebhookErrorsHideTheURL: a failed delivery's error names neither
// the URL nor a header value.
func TestWebhookErrorsHideTheURL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.target.URL = "http://nowhere.test/alerts/s3cr3t-t0ken"
		err := SendTest(context.Background(), &r.target, func(ctx context.Context, network, addr string) (net.Conn, error) {
			return r.hooks.DialContext(ctx, network, addr)
		})
		if err == nil || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "tk_") {
			t.Fatalf("error %v", err)
		}
		r.target.URL = "http://hooks.test/alerts/s3cr3t-t0ken"
		r.rcv.setDown(true)
		err = SendTest(context.Background(), &r.target, func(ctx context.Context, network, addr string) (net.Conn, error) {
			return r.hooks.DialContext(ctx, network, addr)
		})
		if err == nil || err.Error() != "deliver webhook: the receiver answered 503 Service Unavailable" {
			t.Fatalf("error %v", err)
		}
	})
}
