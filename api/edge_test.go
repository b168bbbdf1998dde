package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/task"
)

// newLoopbackServer serves h on a real loopback socket with the daemon's
// timeouts and limits (ConfigureServer).
func newLoopbackServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	ConfigureServer(srv.Config)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// rawAnswer is an answer read over the network.
type rawAnswer struct {
	status int
	header http.Header
	body   []byte
	env    envelope
}

func send(t testing.TB, c *http.Client, req *http.Request) rawAnswer {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %.80s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := rawAnswer{status: resp.StatusCode, header: resp.Header, body: body}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(body, &a.env); err != nil {
			t.Fatalf("answer is not JSON: %v: %.200s", err, body)
		}
	}
	return a
}

// TestLimitsAnswerJSON: over a real socket, a 1 MiB query string gets a
// JSON 414, too large or too many headers a JSON 431, an over-long
// parameter value a 400 that names it, and an unknown parameter's name is
// not echoed in full; every answer has a request id.
func TestLimitsAnswerJSON(t *testing.T) {
	srv := newLoopbackServer(t, New(newFake(t), Options{Tokens: tokens}))
	c := srv.Client()
	list := srv.URL + "/api2/json/remotes/tasks/list"
	huge := strings.Repeat("a", 1<<20)
	get := func(target string, edit func(*http.Request)) rawAnswer {
		req, err := http.NewRequest(http.MethodGet, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+adminSecret)
		if edit != nil {
			edit(req)
		}
		return send(t, c, req)
	}
	withBody := func(body string) func(*http.Request) {
		return func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(body))
			r.ContentLength = int64(len(body))
			r.Header.Set("Content-Type", "application/json")
		}
	}
	cases := []struct {
		name   string
		a      rawAnswer
		status int
		want   string // in the message or the errors
	}{
		{"1 MiB query string", get(list+"?typefilter="+huge, nil), http.StatusRequestURITooLong, "limit is 8192"},
		{"1 MiB + 5 KiB query string", get(list+"?typefilter="+huge+huge[:5<<10], nil), http.StatusRequestURITooLong, "limit is 8192"},
		{"9 KiB header", get(list, func(r *http.Request) { r.Header.Set("X-Big", huge[:9<<10]) }), http.StatusRequestHeaderFieldsTooLarge, "header 'X-Big'"},
		{"70 headers", get(list, func(r *http.Request) {
			for i := range 70 {
				r.Header.Set(fmt.Sprintf("X-H%d", i), "v")
			}
		}), http.StatusRequestHeaderFieldsTooLarge, "header lines: the limit is 64"},
		{"5 KiB typefilter", get(list+"?typefilter="+huge[:5<<10], nil), http.StatusBadRequest, "typefilter: value of 5120 bytes"},
		{"1 MiB typefilter in a body", get(list, withBody(`{"typefilter":"`+huge[:MaxBodyBytes-100]+`"}`)), http.StatusBadRequest, "typefilter: value of"},
		{"1 MiB parameter name", get(list, withBody(`{"`+huge[:MaxBodyBytes-100]+`":1}`)), http.StatusBadRequest, "aaaa...: property is not defined"},
		{"unescaped message", get(list+"?%3Csecret%3E=1", nil), http.StatusBadRequest, "<secret>: property is not defined"},
	}
	for _, cs := range cases {
		a := cs.a
		if a.status != cs.status {
			t.Errorf("%s: status %d, want %d: %.300s", cs.name, a.status, cs.status, a.body)
			continue
		}
		if !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") || a.env.Message == "" {
			t.Errorf("%s: not a JSON error: %s %.300s", cs.name, a.header.Get("Content-Type"), a.body)
		}
		text := a.env.Message
		for k, v := range a.env.Errors {
			text += "\n" + k + ": " + v
		}
		if !strings.Contains(text, cs.want) {
			t.Errorf("%s: %q does not contain %q", cs.name, text, cs.want)
		}
		if len(a.body) > 2048 {
			t.Errorf("%s: %d-byte error body", cs.name, len(a.body))
		}
		if a.header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", cs.name)
		}
	}
	if a := cases[len(cases)-1].a; !bytes.Contains(a.body, []byte("<secret>")) {
		t.Errorf("JSON escapes <>: %s", a.body)
	}
}

// TestGzip: answers over 1 KiB are compressed for clients that accept
// gzip, smaller ones are not.
func TestGzip(t *testing.T) {
	srv := newLoopbackServer(t, New(newFake(t), Options{}))
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, c2 := range []struct {
		target string
		gz     bool
	}{
		{"/api2/json/remotes/tasks/list?limit=0", true},
		{"/api2/json/remotes/tasks/list?limit=0&format=csv", false}, // 919 bytes: under 1 KiB
		{"/api2/json/remotes/tasks/list?limit=1", false},
		{"/api2/json/nope", false},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+c2.target, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		gz := resp.Header.Get("Content-Encoding") == "gzip"
		if gz != c2.gz {
			t.Errorf("%s: gzip %v, want %v (%d bytes)", c2.target, gz, c2.gz, len(body))
			continue
		}
		if gz {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := io.ReadAll(zr)
			if err != nil || len(plain) <= 1024 {
				t.Errorf("%s: %d bytes after gunzip, %v", c2.target, len(plain), err)
			}
		}
	}
}

// gatedBackend blocks Tasks until open is closed, counting the calls
// that entered.
type gatedBackend struct {
	*fakeBackend
	entered atomic.Int32
	open    chan struct{}
}

func (b *gatedBackend) Tasks(ctx context.Context, f task.Filter) (task.Page, error) {
	b.entered.Add(1)
	<-b.open
	return b.fakeBackend.Tasks(ctx, f)
}

// TestInFlightCap: 1000 concurrent requests over real sockets, 50
// allowed in flight: every answer is 200 or 503 with Retry-After, never
// another 5xx; exactly the 50 that got in are answered 200.
func TestInFlightCap(t *testing.T) {
	const n, limit = 1000, 50
	b := &gatedBackend{fakeBackend: newFake(t), open: make(chan struct{})}
	edge := NewEdge(limit)
	srv := newLoopbackServer(t, New(b, Options{Edge: edge}))
	tr := &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}
	defer tr.CloseIdleConnections()
	// The requests let in wait for the gate, which opens at the latest
	// after gateDeadline: the client waits longer than that.
	const gateDeadline = 2 * time.Minute
	c := &http.Client{Transport: tr, Timeout: gateDeadline + time.Minute}

	var wg sync.WaitGroup
	var ok, busy, other atomic.Int32
	var mu sync.Mutex
	var problems []string
	for range n {
		wg.Go(func() {
			resp, err := c.Get(srv.URL + "/api2/json/remotes/tasks/list")
			if err != nil {
				mu.Lock()
				problems = append(problems, err.Error())
				mu.Unlock()
				other.Add(1)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				ok.Add(1)
			case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "1" && bytes.Contains(body, []byte("too many requests in flight")):
				busy.Add(1)
			default:
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%d %s", resp.StatusCode, body))
				mu.Unlock()
				other.Add(1)
			}
		})
	}
	// Open the gate once every request is either in the backend or answered.
	deadline := time.Now().Add(gateDeadline)
	for int(b.entered.Load())+int(busy.Load())+int(other.Load()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(b.open)
	wg.Wait()
	if other.Load() != 0 {
		t.Fatalf("%d answers neither 200 nor 503 with Retry-After, e.g. %v", other.Load(), problems[:min(3, len(problems))])
	}
	if ok.Load() != limit || busy.Load() != n-limit {
		t.Errorf("%d × 200 and %d × 503, want %d and %d", ok.Load(), busy.Load(), limit, n-limit)
	}
	if got := edge.Refused()["in_flight"]; got != uint64(n-limit) {
		t.Errorf("refused in_flight = %d, want %d", got, n-limit)
	}
	if edge.InFlight() != 0 {
		t.Errorf("%d requests still counted in flight", edge.InFlight())
	}
}

// TestProbesNotCapped: the probes answer while every slot is taken.
func TestProbesNotCapped(t *testing.T) {
	b := &gatedBackend{fakeBackend: newFake(t), open: make(chan struct{})}
	h := New(b, Options{Edge: NewEdge(1)})
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(t, h, "/api2/json/remotes/tasks/list")
	}()
	for b.entered.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	get(t, h, "/api2/json/remotes/status").wantStatus(t, http.StatusServiceUnavailable)
	get(t, h, "/livez").wantStatus(t, http.StatusOK)
	close(b.open)
	<-done
}

// trickle opens n connections that send a request head one byte every
// interval and never finish it; stop closes them.
func trickle(t testing.TB, addr string, n int, interval time.Duration) (closed *atomic.Int32, stop func()) {
	t.Helper()
	closed = new(atomic.Int32)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	head := "GET /api2/json/remotes/tasks/list HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("z", 1000)
	for range n {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer conn.Close()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := 0; ; i++ {
				if _, err := conn.Write([]byte{head[i%len(head)]}); err != nil {
					closed.Add(1)
					return
				}
				select {
				case <-quit:
					return
				case <-tick.C:
				}
			}
		})
	}
	return closed, func() { close(quit); wg.Wait() }
}

// TestSlowHeaders: 200 connections trickling their headers one byte a
// second do not keep normal requests from being answered, and are cut
// off by the read-header timeout. (The latency figure is measured by
// BenchmarkRequestWhileTrickling; this test does not time anything
// tighter than its client's timeout.)
func TestSlowHeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 200 connections for a few seconds")
	}
	srv := httptest.NewUnstartedServer(New(newFake(t), Options{}))
	ConfigureServer(srv.Config)
	srv.Config.ReadHeaderTimeout = 2 * time.Second // shorter for the test
	srv.Config.ErrorLog = nil
	srv.Start()
	defer srv.Close()
	closed, stop := trickle(t, srv.Listener.Addr().String(), 200, time.Second)
	defer stop()
	c := &http.Client{Timeout: 10 * time.Second}
	for i := range 20 {
		resp, err := c.Get(srv.URL + "/api2/json/remotes/tasks/list?limit=1")
		if err != nil {
			t.Fatalf("request %d while 200 connections trickle: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
	deadline := time.Now().Add(time.Minute)
	for closed.Load() < 200 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if closed.Load() < 200 {
		t.Errorf("%d of 200 trickling connections cut off by the read-header timeout", closed.Load())
	}
}

// BenchmarkRequestWhileTrickling measures a normal request's latency
// while 200 connections trickle their headers one byte a second.
func BenchmarkRequestWhileTrickling(b *testing.B) {
	for _, n := range []int{0, 200} {
		b.Run(fmt.Sprintf("trickling=%d", n), func(b *testing.B) {
			srv := newLoopbackServer(b, New(newFake(b), Options{Logger: zerolog.Nop()}))
			_, stop := trickle(b, srv.Listener.Addr().String(), n, time.Second)
			defer stop()
			c := &http.Client{}
			var worst time.Duration
			for b.Loop() {
				start := time.Now()
				resp, err := c.Get(srv.URL + "/api2/json/remotes/tasks/list?limit=1")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				worst = max(worst, time.Since(start))
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst_ms")
		})
	}
}

// TestSlowBodyCut: a request body trickled slower than the read timeout
// is answered 408 and its connection closed.
func TestSlowBodyCut(t *testing.T) {
	srv := httptest.NewUnstartedServer(New(newFake(t), Options{}))
	ConfigureServer(srv.Config)
	srv.Config.ReadTimeout = time.Second // shorter for the test
	srv.Start()
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /api2/json/remotes/tasks/refresh HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nremotes="); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(conn) // until the server closes the connection
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	if !bytes.HasPrefix(answer, []byte("HTTP/1.1 408 ")) || !bytes.Contains(answer, []byte(`"message":"request body not received within 20s"`)) {
		t.Errorf("answer to a stalled body:\n%s", answer)
	}
}

// slowRefresh is the fake backend whose Refresh takes delay.
type slowRefresh struct {
	*fakeBackend
	delay time.Duration
}

func (b *slowRefresh) Refresh(ctx context.Context, wait bool, remotes ...string) ([]RefreshResult, error) {
	select {
	case <-time.After(b.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.fakeBackend.Refresh(ctx, wait, remotes...)
}

// TestSlowHandlerOutlivesWriteTimeout: the write timeout bounds writing
// the answer, not the backend's work (a refresh with wait can take
// minutes).
func TestSlowHandlerOutlivesWriteTimeout(t *testing.T) {
	srv := httptest.NewUnstartedServer(New(&slowRefresh{fakeBackend: newFake(t), delay: 1500 * time.Millisecond}, Options{}))
	ConfigureServer(srv.Config)
	srv.Config.WriteTimeout = 500 * time.Millisecond // shorter for the test
	srv.Start()
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+"/api2/json/remotes/tasks/refresh?wait=1", "", nil)
	if err != nil {
		t.Fatalf("refresh longer than the write timeout: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"remote":"east"`)) {
		t.Errorf("refresh: %d %s, %v", resp.StatusCode, body, err)
	}
}
