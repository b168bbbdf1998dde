package proxmox

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// TestConnectionReuse polls one remote ten times, as a poller does every
// refresh, and counts the connections: keep-alive connections must carry
// every poll, so no more than MaxConns are ever opened.
func TestConnectionReuse(t *testing.T) {
	for _, parallel := range []bool{false, true} {
		f := newFakeRemote(task.PVE, "pve1", "pve2", "pve3", "pve4", "pve5")
		for _, n := range []string{"pve1", "pve2", "pve3", "pve4", "pve5"} {
			fillNode(f, n, 2, 20)
		}
		var gzipped atomic.Int64
		srv := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				gzipped.Add(1)
			}
			f.handler("pve1").ServeHTTP(w, r)
		}))
		cfg := testConfig(task.PVE, srv.endpoint())
		cfg.PageSize = 20 // 34 tasks a node: two pages
		c := newTestClient(t, cfg)
		for range 10 {
			nodes, err := c.Nodes(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for _, n := range nodes {
				fetch := func() {
					if _, err := c.FetchTasks(context.Background(), n.Name, since); err != nil {
						t.Error(err)
					}
				}
				if parallel {
					wg.Go(fetch)
				} else {
					fetch()
				}
			}
			wg.Wait()
		}
		st := c.Stats()
		t.Logf("parallel %v: 10 polls, %d requests, %d dials, %d new connections (server saw %d); %d body bytes from %d network bytes",
			parallel, st.Requests, st.Dials, st.NewConns, srv.conns.Load(), st.BodyBytes, st.BytesRead)
		if srv.conns.Load() > int64(DefaultMaxConnsPVE) || st.NewConns != srv.conns.Load() || st.Dials != st.NewConns {
			t.Errorf("parallel %v: %d connections (client counted %d, %d dials), want at most %d",
				parallel, srv.conns.Load(), st.NewConns, st.Dials, DefaultMaxConnsPVE)
		}
		if !parallel && st.NewConns != 1 {
			t.Errorf("sequential polls used %d connections, want 1", st.NewConns)
		}
		if gzipped.Load() != st.Requests || st.BytesRead >= st.BodyBytes {
			t.Errorf("compression: %d of %d requests accepted gzip; %d network bytes for %d body bytes",
				gzipped.Load(), st.Requests, st.BytesRead, st.BodyBytes)
		}
	}
}

// TestSessionResumption: a new connection to an endpoint resumes the TLS
// session of the previous one (pinned and CA-verified endpoints alike).
func TestSessionResumption(t *testing.T) {
	var resumed atomic.Int64
	f := newFakeRemote(task.PVE, "pve1")
	srv := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS.DidResume {
			resumed.Add(1)
		}
		f.handler("pve1").ServeHTTP(w, r)
	}))
	c := newTestClient(t, testConfig(task.PVE, srv.endpoint()))
	for i := range 3 {
		if _, err := c.Nodes(context.Background()); err != nil {
			t.Fatal(err)
		}
		c.transport.CloseIdleConnections() // the next request needs a new connection
		if got := resumed.Load(); got != int64(i) {
			t.Fatalf("request %d: %d resumed handshakes, want %d", i, got, i)
		}
	}
	if st := c.Stats(); st.NewConns != 3 {
		t.Errorf("%d connections, want 3", st.NewConns)
	}
}

// TestConnectionAfterError: pveproxy closes the connection after every
// answer >= 400; the next request opens a new one and succeeds.
func TestConnectionAfterError(t *testing.T) {
	var fail atomic.Bool
	f := newFakeRemote(task.PVE, "pve1")
	srv := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			rawResponse(w, 500, "Internal Server Error", pveJSON, `{"data":null}`, -1)
			return
		}
		f.handler("pve1").ServeHTTP(w, r)
	}))
	c := newTestClient(t, testConfig(task.PVE, srv.endpoint()))
	for i, failing := range []bool{false, true, false, true, false} {
		fail.Store(failing)
		_, err := c.Nodes(context.Background())
		if failing != (err != nil) {
			t.Fatalf("request %d (failing %v): %v", i, failing, err)
		}
	}
	// Two errors closed two connections: three in all.
	if st := c.Stats(); st.NewConns != 3 || srv.conns.Load() != 3 {
		t.Errorf("%d connections (server %d), want 3", st.NewConns, srv.conns.Load())
	}
}

// TestAuthTransport: the token is added to a clone; the caller's request is
// left alone, as the RoundTripper contract requires.
func TestAuthTransport(t *testing.T) {
	var got string
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Header.Get("Authorization")
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	for _, tc := range []struct {
		pbs  bool
		want string
	}{
		{pbs: false, want: "PVEAPIToken=" + testTokenID + "=" + testSecret},
		{pbs: true, want: "PBSAPIToken=" + testTokenID + ":" + testSecret},
	} {
		at := &authTransport{base: base, header: authHeader(tc.pbs, testTokenID, testSecret)}
		req, err := http.NewRequest(http.MethodGet, "https://pve1.test:8006/api2/json/nodes", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := at.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if got != tc.want {
			t.Errorf("pbs %v: Authorization %q, want %q", tc.pbs, got, tc.want)
		}
		if req.Header.Get("Authorization") != "" {
			t.Errorf("the caller's request was modified")
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
