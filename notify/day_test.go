package notify

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/actors"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/events"
	"github.com/taskfleet/taskfleet/internal/fleettest"
	"github.com/taskfleet/taskfleet/internal/memnet"
	"github.com/taskfleet/taskfleet/notify/tmpl"
	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// flakyReceiver is a webhook receiver that fails about half of its
// requests. A request it accepts is recorded at once and answered after
// a delay: a daemon stopped meanwhile never learns that it was delivered
// (the documented crash window).
type flakyReceiver struct {
	mu       sync.Mutex
	rng      *rand.Rand
	delay    time.Duration
	requests int
	failed   int
	ok       int
	got      map[string]int // "PATH UPID" → times delivered
	// cut counts, per "PATH UPID", the accepted deliveries whose answer
	// did not reach the sender (it was stopped).
	cut     map[string]int
	msgs    map[string]int // successful messages per path
	biggest int            // tasks of the largest message
	inWin   chan struct{}
}

func (r *flakyReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var m tmpl.Message
	if err == nil {
		err = json.Unmarshal(body, &m)
	}
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.requests++
	if r.rng.IntN(2) == 0 {
		r.failed++
		r.mu.Unlock()
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	r.ok++
	r.msgs[req.URL.Path]++
	r.biggest = max(r.biggest, len(m.Tasks))
	for _, t := range m.Tasks {
		r.got[req.URL.Path+" "+t.UPID]++
	}
	r.mu.Unlock()
	select {
	case r.inWin <- struct{}{}:
	default:
	}
	select {
	case <-time.After(r.delay):
		w.WriteHeader(http.StatusNoContent)
	case <-req.Context().Done():
		r.mu.Lock()
		for _, t := range m.Tasks {
			r.cut[req.URL.Path+" "+t.UPID]++
		}
		r.mu.Unlock()
	}
}

// TestDeliveryOverADayWithKills is issue 11's Done-when test: a
// simulated day of a fleet, a webhook receiver that fails half of its
// requests, and the daemon (cache, actors, events hub, notifiers) killed
// and restarted at random points, half of the kills inside the window
// between a delivery and its record. Every failed task is delivered; none
// twice unless a kill cut its delivery's answer; bursts are grouped.
func TestDeliveryOverADayWithKills(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated day: skipped with -short")
	}
	synctest.Test(t, func(t *testing.T) {
		var frozen atomic.Int64
		f, err := sim.New(sim.Config{Seed: 21, PVEClusters: 3, NodesPerCluster: 2, PBSServers: 1, TaskRate: 6,
			History: 6 * time.Hour, IndexSize: 1000, InMemory: true,
			Now: func() time.Time {
				if at := frozen.Load(); at != 0 {
					return time.Unix(at, 0)
				}
				return time.Now()
			}})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Start(); err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		dir := t.TempDir()
		cfg := fleettest.Config(f, dir)

		var hooks memnet.Network
		defer hooks.Close()
		ln, err := hooks.Listen("hooks.test:80")
		if err != nil {
			t.Fatal(err)
		}
		rcv := &flakyReceiver{rng: rand.New(rand.NewPCG(1, 2)), delay: 2 * time.Second, got: map[string]int{}, cut: map[string]int{}, msgs: map[string]int{}, inWin: make(chan struct{})}
		srv := &http.Server{Handler: rcv}
		served := make(chan struct{})
		go func() { defer close(served); _ = srv.Serve(ln) }()
		defer func() { _ = srv.Close(); <-served }()

		body, err := tmpl.Parse("body", "{{json .}}")
		if err != nil {
			t.Fatal(err)
		}
		// Two targets: every failed task, and backups (PVE's vzdump, PBS's
		// backup) that failed or ended with warnings.
		errs, bad := task.StatusSet(0).Add(task.StatusError), task.StatusSet(0).Add(task.StatusError).Add(task.StatusWarning)
		targets := []config.Notify{
			{Name: "hook", Kind: config.NotifyWebhook, URL: "http://hooks.test/all", Method: "POST", Body: body,
				GroupWindow: config.DefaultNotifyWindow, Queue: config.DefaultNotifyQueue, Timeout: config.DefaultNotifyTimeout,
				Rules: []config.NotifyRule{{Status: errs}}},
			{Name: "backups", Kind: config.NotifyWebhook, URL: "http://hooks.test/backups", Method: "POST", Body: body,
				GroupWindow: config.DefaultNotifyWindow, Queue: config.DefaultNotifyQueue, Timeout: config.DefaultNotifyTimeout,
				Rules: []config.NotifyRule{{Type: "vzdump", Status: bad}, {Type: "backup", Status: bad}}},
		}
		met := NewMetrics(nil)

		type daemon struct {
			hub *events.Hub
			svc *actors.Service
			ns  *Notifiers
		}
		start := func() daemon {
			t.Helper()
			hub := events.New(events.Options{})
			svc, err := actors.Start(cfg, actors.Options{DialContext: f.DialContext, Events: hub})
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.WaitLoaded(context.Background()); err != nil {
				t.Fatal(err)
			}
			ns, err := Start(Options{Targets: targets, CacheDir: dir, Hub: hub, Snapshot: svc.Snapshot,
				Metrics: met, Retention: 7 * 24 * time.Hour, StopGrace: -1, // a stop is a kill
				Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
					return hooks.DialContext(ctx, network, addr)
				}})
			if err != nil {
				t.Fatal(err)
			}
			return daemon{hub, svc, ns}
		}
		kill := func(d daemon) {
			t.Helper()
			// The notifiers first: with StopGrace < 0 a stop cancels the
			// delivery in flight and records nothing, as a kill would.
			if err := d.ns.Stop(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := d.svc.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			d.hub.Close()
		}

		since := time.Now().Unix() // the state is created at the first start
		end := time.Now().Add(24 * time.Hour)
		rng := rand.New(rand.NewPCG(3, 4))
		kills, inWindow := 0, 0
		for time.Now().Before(end) {
			d := start()
			run := min(10*time.Minute+time.Duration(rng.Int64N(int64(3*time.Hour))), time.Until(end))
			if kills%2 == 1 {
				// Kill inside the crash window: right after the receiver
				// took a message, before the answer.
				select {
				case <-rcv.inWin:
					inWindow++
				case <-time.After(run):
				}
			} else {
				time.Sleep(run)
			}
			kill(d)
			kills++
			time.Sleep(time.Duration(rng.Int64N(int64(30 * time.Minute))))
		}
		// The last run: catch up with the fleet, then stop its clock and
		// give the notifier time to deliver everything through the
		// failures (the backoff is at most 10 minutes).
		d := start()
		time.Sleep(30 * time.Minute)
		frozen.Store(time.Now().Unix())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if _, err := d.svc.Refresh(ctx, true); err != nil {
			t.Fatal(err)
		}
		cancel()
		time.Sleep(2 * time.Hour)
		kill(d)
		time.Sleep(2 * time.Second) // protoactor's dead-letter throttle ends

		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		want := map[string]bool{} // "PATH UPID"
		perTarget := map[string]int{}
		for _, tk := range f.GroundTruth() {
			if tk.Running() || tk.EndTime < since {
				continue
			}
			for _, tg := range targets {
				if tg.MatchTask(&tk) {
					path := tg.URL.Reveal()[len("http://hooks.test"):]
					want[path+" "+tk.UPID.String()] = true
					perTarget[path]++
				}
			}
		}
		missing, dups := 0, 0
		for k := range want {
			if rcv.got[k] == 0 {
				missing++
				if missing <= 5 {
					t.Errorf("never delivered: %s", k)
				}
			}
		}
		for k, n := range rcv.got {
			if !want[k] {
				t.Errorf("delivered but matches no rule of the target or ended before the start: %s", k)
			}
			if n > 1 {
				dups += n - 1
				if n-1 > rcv.cut[k] {
					t.Errorf("%s delivered %d times, its answer cut %d times", k, n, rcv.cut[k])
				}
			}
		}
		tasks := 0
		for _, n := range rcv.got {
			tasks += n
		}
		t.Logf("over %v: %d failed tasks to /all in %d messages, %d failed or warned backups to /backups in %d messages (largest %d tasks); %d requests, %d failed by the receiver; %d kills (%d inside the crash window); %d duplicates, all after a cut answer; dropped %v",
			24*time.Hour, perTarget["/all"], rcv.msgs["/all"], perTarget["/backups"], rcv.msgs["/backups"], rcv.biggest, rcv.requests, rcv.failed, kills, inWindow, dups, testutilDropped(met, "hook")+testutilDropped(met, "backups"))
		if perTarget["/all"] < 20 || perTarget["/backups"] < 5 {
			t.Errorf("only %v matching tasks: the day tests too little", perTarget)
		}
		if d := testutilDropped(met, "hook") + testutilDropped(met, "backups"); d != 0 {
			t.Errorf("%v tasks dropped: the queues never fill here", d)
		}
		if rcv.ok >= tasks || rcv.biggest < 2 {
			t.Errorf("%d messages for %d tasks: bursts not grouped", rcv.ok, tasks)
		}
		if inWindow == 0 {
			t.Error("no kill inside the crash window")
		}
	})
}
