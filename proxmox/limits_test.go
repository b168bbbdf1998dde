package proxmox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// These tests run in a synctest bubble on the in-memory network: after
// synctest.Wait every goroutine is blocked, so "exactly N requests reached
// the server and the rest wait in the client" is an observation, not a
// race, and timeouts expire at exact virtual times.

// gate holds every request in the handler until the test lets one go.
type gate struct {
	mu        sync.Mutex
	open      bool // let requests through uncounted
	in, total int  // requests in the handler now, and in all
	max       int  // most requests in the handler at once
	release   chan struct{}
}

func newGate() *gate { return &gate{release: make(chan struct{})} }

func (g *gate) setOpen(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = open
}

func (g *gate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		if g.open {
			g.mu.Unlock()
			h.ServeHTTP(w, r)
			return
		}
		g.in++
		g.total++
		g.max = max(g.max, g.in)
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			g.in--
			g.mu.Unlock()
		}()
		select {
		case <-g.release:
		case <-r.Context().Done():
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (g *gate) counts() (in, total, most int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.in, g.total, g.max
}

// semLimiter is a global Limiter: a counting semaphore.
type semLimiter struct {
	sem  chan struct{}
	mu   sync.Mutex
	held int
}

func newSemLimiter(n int) *semLimiter { return &semLimiter{sem: make(chan struct{}, n)} }

func (l *semLimiter) Acquire(ctx context.Context) error {
	select {
	case l.sem <- struct{}{}:
		l.mu.Lock()
		l.held++
		l.mu.Unlock()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *semLimiter) Release() {
	l.mu.Lock()
	l.held--
	l.mu.Unlock()
	<-l.sem
}

func (l *semLimiter) permits() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// gatedRemote serves a one-node PVE remote at addr behind g and returns a
// client for it.
func gatedRemote(t *testing.T, n *memNet, addr string, g *gate, maxConns int, lim Limiter) (*Client, *testServer) {
	f := newFakeRemote(task.PVE, "pve1")
	fillNode(f, "pve1", 1, 3)
	srv := startMem(t, n, addr, g.wrap(f.handler("pve1")))
	cfg := testConfig(task.PVE, srv.endpoint())
	cfg.DialContext, cfg.MaxConns = n.DialContext, maxConns
	if lim != nil {
		cfg.Limiter = lim
	}
	return newTestClient(t, cfg), srv
}

// list starts n ListTasks calls and returns a channel of their errors.
func list(c *Client, n int) <-chan error {
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.ListTasks(context.Background(), "pve1", ListQuery{})
			errs <- err
		}()
	}
	return errs
}

// TestPerRemoteCap: however many calls are made, and even when they go to
// different endpoints (the transport only caps connections per host), no
// more than MaxConns requests of one remote are in flight.
func TestPerRemoteCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxConns, calls = 3, 12
		g, n := newGate(), newMemNet()
		f := newFakeRemote(task.PVE, "pve1", "pve2", "pve3")
		var eps []Endpoint
		var srvs []*testServer
		for _, node := range []string{"pve1", "pve2", "pve3"} {
			fillNode(f, node, 1, 3)
			srv := startMem(t, n, node+".test:8006", g.wrap(f.handler(node)))
			eps, srvs = append(eps, srv.endpoint()), append(srvs, srv)
		}
		cfg := testConfig(task.PVE, eps...)
		cfg.DialContext, cfg.MaxConns = n.DialContext, maxConns
		c := newTestClient(t, cfg)
		g.setOpen(true)
		if _, err := c.Discover(context.Background()); err != nil {
			t.Fatal(err)
		}
		g.setOpen(false)
		errs := make(chan error, calls)
		for i := range calls {
			go func() {
				_, err := c.ListTasks(context.Background(), fmt.Sprintf("pve%d", 1+i%3), ListQuery{})
				errs <- err
			}()
		}
		for released := 0; released < calls; released++ {
			synctest.Wait()
			in, total, _ := g.counts()
			if want := min(maxConns, calls-released); in != want || total != released+want {
				t.Fatalf("after %d released: %d in the servers (%d in all), want %d (%d)", released, in, total, want, released+want)
			}
			g.release <- struct{}{}
		}
		for range calls {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		conns := srvs[0].conns.Load() + srvs[1].conns.Load() + srvs[2].conns.Load()
		_, total, most := g.counts()
		if most != maxConns || total != calls || f.proxied != 0 {
			t.Errorf("%d calls: at most %d at once (want %d), %d relayed", total, most, maxConns, f.proxied)
		}
		t.Logf("%d calls over 3 endpoints: at most %d in flight, %d connections", calls, most, conns)
	})
}

func TestGlobalLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, n, lim := newGate(), newMemNet(), newSemLimiter(2)
		a, _ := gatedRemote(t, n, "a.test:8006", g, 5, lim)
		b, _ := gatedRemote(t, n, "b.test:8006", g, 5, lim)
		errsA, errsB := list(a, 5), list(b, 5)
		for released := range 10 {
			synctest.Wait()
			if in, _, _ := g.counts(); in != min(2, 10-released) || lim.permits() != in {
				t.Fatalf("after %d released: %d in the server, %d permits held; want %d", released, in, lim.permits(), min(2, 10-released))
			}
			g.release <- struct{}{}
		}
		for range 5 {
			if err := errors.Join(<-errsA, <-errsB); err != nil {
				t.Fatal(err)
			}
		}
		if _, total, most := g.counts(); most != 2 || total != 10 || lim.permits() != 0 {
			t.Errorf("%d requests, at most %d at once, %d permits left; want 10, 2, 0", total, most, lim.permits())
		}
	})
}

// TestOwnSlotFirst: calls queued behind their remote's own cap hold no
// global permit, so another remote gets the free permit at once.
func TestOwnSlotFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, n, lim := newGate(), newMemNet(), newSemLimiter(2)
		a, _ := gatedRemote(t, n, "a.test:8006", g, 1, lim)
		b, _ := gatedRemote(t, n, "b.test:8006", g, 1, lim)
		errsA := list(a, 5)
		synctest.Wait()
		if in, _, _ := g.counts(); in != 1 || lim.permits() != 1 {
			t.Fatalf("remote a: %d in the server, %d permits held; want 1, 1", in, lim.permits())
		}
		errsB := list(b, 1)
		synctest.Wait()
		if in, _, _ := g.counts(); in != 2 || lim.permits() != 2 {
			t.Fatalf("remote b did not get the free permit: %d in the server, %d permits held", in, lim.permits())
		}
		for range 6 {
			g.release <- struct{}{}
		}
		for range 5 {
			if err := <-errsA; err != nil {
				t.Fatal(err)
			}
		}
		if err := <-errsB; err != nil {
			t.Fatal(err)
		}
	})
}

// failingLimiter refuses every permit.
type failingLimiter struct{}

func (failingLimiter) Acquire(context.Context) error { return errors.New("budget exhausted") }
func (failingLimiter) Release()                      { panic("release without acquire") }

// TestLimiterError: a Limiter that fails gives the error back and frees the
// remote's slot.
func TestLimiterError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, n := newGate(), newMemNet()
		c, _ := gatedRemote(t, n, "a.test:8006", g, 1, failingLimiter{})
		for range 3 { // with one slot, a leaked slot would block the second call
			_, err := c.ListTasks(context.Background(), "pve1", ListQuery{})
			if err == nil || !strings.Contains(err.Error(), "budget exhausted") || ErrorKind(err) != "other" {
				t.Fatalf("want the limiter's error, got %v", err)
			}
		}
		if _, total, _ := g.counts(); total != 0 {
			t.Errorf("%d requests sent without a permit", total)
		}
	})
}

// TestTimeouts: every timeout fires at its configured virtual time and is a
// TimeoutError naming remote, node, endpoint and phase; an endpoint that
// times out while connecting is skipped for the next.
func TestTimeouts(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(t *testing.T, n *memNet) string // serves or breaks a.test:8006; returns its fingerprint
		second  bool                                 // a working second endpoint
		cfg     func(*Config)
		phase   string
		after   time.Duration
		success bool
	}{
		{
			name: "hang before headers", phase: "response headers", after: DefaultResponseHeaderTimeout,
			setup: func(t *testing.T, n *memNet) string {
				return startMem(t, n, "a.test:8006", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })).FP
			},
		},
		{
			name: "hang before headers, short request timeout", phase: "request", after: 5 * time.Second,
			cfg: func(c *Config) { c.RequestTimeout = 5 * time.Second },
			setup: func(t *testing.T, n *memNet) string {
				return startMem(t, n, "a.test:8006", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })).FP
			},
		},
		{
			name: "hang in the body", phase: "request", after: DefaultRequestTimeout,
			setup: func(t *testing.T, n *memNet) string {
				return startMem(t, n, "a.test:8006", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = w.Write([]byte(`{"data":[{"upid":`))
					_ = http.NewResponseController(w).Flush()
					<-r.Context().Done()
				})).FP
			},
		},
		{
			name: "dial hangs", phase: "dial", after: DefaultDialTimeout,
			setup: func(t *testing.T, n *memNet) string {
				n.setHang("a.test:8006", true)
				return ""
			},
		},
		{
			name: "dial hangs, next endpoint", after: DefaultDialTimeout, second: true, success: true,
			setup: func(t *testing.T, n *memNet) string {
				n.setHang("a.test:8006", true)
				return ""
			},
		},
		{
			name: "tls handshake hangs", phase: "tls handshake", after: DefaultTLSHandshakeTimeout,
			setup: func(t *testing.T, n *memNet) string {
				// Accepts connections and never says a word.
				l := n.listen("a.test:8006")
				done := make(chan struct{})
				go func() {
					defer close(done)
					for {
						c, err := l.Accept()
						if err != nil {
							return
						}
						t.Cleanup(func() { _ = c.Close() })
					}
				}()
				t.Cleanup(func() {
					_ = l.Close()
					<-done
				})
				return ""
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newMemNet()
				fp := tc.setup(t, n)
				if fp == "" {
					fp = strings.Repeat("00:", 31) + "00" // never checked: no handshake completes
				}
				cfg := testConfig(task.PVE, Endpoint{URL: "https://a.test:8006", Fingerprint: fp})
				if tc.second {
					f := newFakeRemote(task.PVE, "pve1")
					srv := startMem(t, n, "b.test:8006", f.handler("pve1"))
					cfg.Endpoints = append(cfg.Endpoints, srv.endpoint())
				}
				cfg.DialContext = n.DialContext
				if tc.cfg != nil {
					tc.cfg(&cfg)
				}
				c := newTestClient(t, cfg)
				start := time.Now()
				_, err := c.ListTasks(context.Background(), "pve1", ListQuery{})
				if took := time.Since(start); took != tc.after {
					t.Errorf("returned after %v, want %v", took, tc.after)
				}
				if tc.success {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				var te *TimeoutError
				if !errors.As(err, &te) || te.Phase != tc.phase || te.After != tc.after || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("want TimeoutError (%s after %v) not matching context.DeadlineExceeded, got %#v", tc.phase, tc.after, err)
				}
				msg := err.Error()
				for _, part := range []string{`remote "east"`, `node "pve1"`, "https://a.test:8006/api2/json/nodes/pve1/tasks", tc.phase} {
					if !strings.Contains(msg, part) {
						t.Errorf("message lacks %q: %s", part, msg)
					}
				}
				assertNoSecret(t, "error", msg+fmtAll(err))
				t.Log(msg)
			})
		})
	}
}

// TestCallerDeadline: the caller's own deadline is a CanceledError that
// matches context.DeadlineExceeded, not a TimeoutError.
func TestCallerDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		srv := startMem(t, n, "a.test:8006", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		cfg := testConfig(task.PVE, srv.endpoint())
		cfg.DialContext = n.DialContext
		c := newTestClient(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := c.ListTasks(ctx, "pve1", ListQuery{})
		var ce *CanceledError
		var te *TimeoutError
		if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) || ErrorKind(err) != "canceled" {
			t.Fatalf("want CanceledError matching context.DeadlineExceeded, got %#v", err)
		}
	})
}

// TestIdleConnectionsOutliveRefresh: a connection left idle for a 10-minute
// refresh interval is still there for the next poll; one idle for longer
// than IdleConnTimeout (15 minutes) is closed and replaced.
func TestIdleConnectionsOutliveRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		f := newFakeRemote(task.PVE, "pve1")
		srv := startMem(t, n, "pve1.test:8006", f.handler("pve1"))
		cfg := testConfig(task.PVE, srv.endpoint())
		cfg.DialContext = n.DialContext
		c := newTestClient(t, cfg)
		for i, idle := range []time.Duration{0, 10 * time.Minute, 10 * time.Minute, 16 * time.Minute} {
			time.Sleep(idle)
			if _, err := c.Nodes(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := int64(1)
			if i == 3 {
				want = 2
			}
			if got := c.Stats().NewConns; got != want {
				t.Errorf("poll %d after %v idle: %d connections, want %d", i, idle, got, want)
			}
		}
	})
}
