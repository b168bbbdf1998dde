package sim

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/taskfleet/taskfleet/task"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testClient is a minimal Proxmox client on net/http for the tests: it
// pins each endpoint's fingerprint and authenticates with the remote's
// token. It does not decompress (it sends Accept-Encoding itself when
// asked to) so tests see what the server sent.
type testClient struct {
	t       testing.TB
	f       *Fleet
	tr      *http.Transport
	hc      *http.Client
	mu      sync.Mutex
	pins    map[string]string // host:port -> fingerprint
	remotes map[string]Remote
}

func newTestClient(t testing.TB, f *Fleet) *testClient {
	c := &testClient{t: t, f: f, pins: map[string]string{}, remotes: map[string]Remote{}}
	c.refresh()
	cache := tls.NewLRUClientSessionCache(256)
	c.tr = &http.Transport{
		MaxIdleConnsPerHost: 8,
		DisableCompression:  true,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := f.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(raw, &tls.Config{
				InsecureSkipVerify: true, // we pin fingerprints instead
				VerifyConnection:   func(cs tls.ConnectionState) error { return c.verify(addr, cs) },
				ClientSessionCache: cache,
				NextProtos:         []string{"http/1.1"},
			})
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			return tc, nil
		},
	}
	c.hc = &http.Client{Transport: c.tr}
	return c
}

// refresh reloads the remotes (after AddNode).
func (c *testClient) refresh() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.f.Remotes() {
		c.remotes[r.ID] = r
		for _, e := range r.Endpoints {
			c.pins[strings.TrimPrefix(e.URL, "https://")] = e.Fingerprint
		}
	}
}

func (c *testClient) verify(addr string, cs tls.ConnectionState) error {
	c.mu.Lock()
	want := c.pins[addr]
	c.mu.Unlock()
	if got := Fingerprint(cs.PeerCertificates[0].Raw); got != want {
		return fmt.Errorf("certificate fingerprint %s, want %s", got, want)
	}
	return nil
}

func (c *testClient) close() { c.tr.CloseIdleConnections() }

// response is what a request returned.
type response struct {
	status int
	reason string // "401 No ticket" -> "No ticket"
	header http.Header
	body   []byte
	close  bool // the server announced it closes the connection
}

// endpoint returns the base URL of a node ("" for the first).
func (c *testClient) endpoint(remote, node string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.remotes[remote]
	if !ok {
		c.t.Fatalf("no remote %s", remote)
	}
	for _, e := range r.Endpoints {
		if node == "" || e.Node == node {
			return e.URL
		}
	}
	c.t.Fatalf("remote %s has no node %s", remote, node)
	return ""
}

// authHeader returns the token header of a remote.
func (c *testClient) authHeader(remote string) string {
	c.mu.Lock()
	r := c.remotes[remote]
	c.mu.Unlock()
	if r.Kind == task.PBS {
		return "PBSAPIToken=" + r.TokenID + ":" + r.TokenSecret
	}
	return "PVEAPIToken=" + r.TokenID + "=" + r.TokenSecret
}

// do sends GET base+path with the remote's token and extra headers.
func (c *testClient) do(ctx context.Context, remote, node, path string, hdr map[string]string) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint(remote, node)+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", c.authHeader(remote))
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	_, reason, _ := strings.Cut(resp.Status, " ")
	return &response{status: resp.StatusCode, reason: reason, header: resp.Header, body: body, close: resp.Close}, nil
}

// get is do that fails the test on a transport error.
func (c *testClient) get(remote, node, path string) *response {
	c.t.Helper()
	r, err := c.do(context.Background(), remote, node, path, nil)
	if err != nil {
		c.t.Fatalf("GET %s on %s/%s: %v", path, remote, node, err)
	}
	return r
}

// envelope is a JSON answer.
type envelope struct {
	Data  json.RawMessage `json:"data"`
	Total *int            `json:"total"`
}

// getOK gets path, expects 200 and decodes the envelope.
func (c *testClient) getOK(remote, node, path string) envelope {
	c.t.Helper()
	r := c.get(remote, node, path)
	if r.status != http.StatusOK {
		c.t.Fatalf("GET %s on %s/%s = %d %s %q, want 200", path, remote, node, r.status, r.reason, r.body)
	}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		c.t.Fatalf("GET %s: decode %q: %v", path, r.body, err)
	}
	return env
}

// item is a task list item of either product.
type item struct {
	UPID       string  `json:"upid"`
	Node       string  `json:"node"`
	PID        int64   `json:"pid"`
	PStart     int64   `json:"pstart"`
	StartTime  int64   `json:"starttime"`
	Type       string  `json:"type"`
	ID         *string `json:"id"`
	WorkerType string  `json:"worker_type"`
	WorkerID   *string `json:"worker_id"`
	User       string  `json:"user"`
	TokenID    string  `json:"tokenid"`
	EndTime    int64   `json:"endtime"`
	Status     string  `json:"status"`
	Saved      string  `json:"saved"`
}

// list gets a task list and returns its items and total.
func (c *testClient) list(remote, node, query string) ([]item, int) {
	c.t.Helper()
	n := node
	r, _ := c.f.lookup(remote, "")
	if r != nil && r.kind == task.PBS {
		n = "localhost"
	}
	env := c.getOK(remote, node, "/api2/json/nodes/"+n+"/tasks?"+query)
	var items []item
	if err := json.Unmarshal(env.Data, &items); err != nil {
		c.t.Fatalf("decode task list: %v", err)
	}
	total := -1
	if env.Total != nil {
		total = *env.Total
	}
	return items, total
}

// fetchAll pages through a node's whole list (source=all on PVE) with
// pages of size limit and returns the items in order.
func (c *testClient) fetchAll(remote, node string, limit int, extra string) []item {
	c.t.Helper()
	var all []item
	for start := 0; ; start += limit {
		q := fmt.Sprintf("start=%d&limit=%d%s", start, limit, extra)
		if r, _ := c.f.lookup(remote, ""); r.kind == task.PVE {
			q += "&source=all"
		}
		page, _ := c.list(remote, node, q)
		all = append(all, page...)
		if len(page) < limit {
			return all
		}
	}
}

// toTask converts an item to the task it describes.
func (it item) toTask(t testing.TB, remote string) task.Task {
	t.Helper()
	u, err := task.ParseUPID(it.UPID)
	if err != nil {
		t.Fatalf("item upid: %v", err)
	}
	tk := task.Task{Remote: remote, UPID: u, EndTime: it.EndTime}
	if it.EndTime != 0 {
		tk.Status = it.Status
	}
	return tk
}

// runInBubble runs fn inside a synctest bubble with an in-memory fleet
// and a client; both are closed at the end.
func runInBubble(t *testing.T, cfg Config, fn func(t *testing.T, f *Fleet, c *testClient)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		cfg.InMemory = true
		f, err := New(cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if err := f.Start(); err != nil {
			t.Fatalf("Start: %v", err)
		}
		defer f.Close()
		c := newTestClient(t, f)
		defer c.close()
		fn(t, f, c)
	})
}

// q encodes query parameters.
func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

// fixedClock is a clock a test sets and advances.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFixedClock(t time.Time) *fixedClock { return &fixedClock{t: t} }

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// taskKey identifies a task across remotes.
func taskKey(t task.Task) string { return t.Remote + "!" + t.UPID.String() }
