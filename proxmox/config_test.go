package proxmox

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

func TestNewValidates(t *testing.T) {
	ok := Endpoint{URL: "https://10.0.0.1:8006"}
	cases := []struct {
		name  string
		tweak func(*Config)
		want  string // part of the error; "" means valid
	}{
		{name: "valid", tweak: func(*Config) {}},
		{name: "bad remote id", tweak: func(c *Config) { c.Remote = "../east" }, want: "remote id"},
		{name: "no kind", tweak: func(c *Config) { c.Kind = 0 }, want: "want pve or pbs"},
		{name: "token without realm", tweak: func(c *Config) { c.TokenID = "root!tok" }, want: "user@realm!tokenname"},
		{name: "token without name", tweak: func(c *Config) { c.TokenID = "root@pam" }, want: "user@realm!tokenname"},
		{name: "token with separator", tweak: func(c *Config) { c.TokenID = "root@pam!a=b" }, want: "separator"},
		{name: "empty secret", tweak: func(c *Config) { c.TokenSecret = "" }, want: "secret is empty"},
		{name: "secret with newline", tweak: func(c *Config) { c.TokenSecret = testSecret + "\r\nX-Evil: 1" }, want: "control character"},
		{name: "pve secret with =", tweak: func(c *Config) { c.TokenSecret = testSecret + "=" }, want: "'='"},
		{name: "no endpoints", tweak: func(c *Config) { c.Endpoints = nil }, want: "no endpoints"},
		{name: "http", tweak: func(c *Config) { c.Endpoints = []Endpoint{{URL: "http://10.0.0.1:8006"}} }, want: "https"},
		{name: "path", tweak: func(c *Config) { c.Endpoints = []Endpoint{{URL: "https://10.0.0.1:8006/api2/json"}} }, want: "only https://host"},
		{name: "no host", tweak: func(c *Config) { c.Endpoints = []Endpoint{{URL: "https://:8006"}} }, want: "no host"},
		{name: "bad port", tweak: func(c *Config) { c.Endpoints = []Endpoint{{URL: "https://a:99999"}} }, want: "bad port"},
		{name: "duplicate", tweak: func(c *Config) { c.Endpoints = []Endpoint{ok, {URL: "https://10.0.0.1"}} }, want: "duplicate"},
		{name: "bad fingerprint", tweak: func(c *Config) { c.Endpoints = []Endpoint{{URL: ok.URL, Fingerprint: "AB:CD"}} }, want: "fingerprint"},
		{name: "secret as fingerprint", tweak: func(c *Config) { c.Endpoints = []Endpoint{{URL: ok.URL, Fingerprint: testSecret}} }, want: "fingerprint: got 36 characters, not hex"},
		{name: "negative conns", tweak: func(c *Config) { c.MaxConns = -1 }, want: "max conns"},
		{name: "negative timeout", tweak: func(c *Config) { c.DialTimeout = -time.Second }, want: "dial timeout"},
		{name: "negative body cap", tweak: func(c *Config) { c.MaxBodyBytes = -1 }, want: "max body bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(task.PVE, ok)
			tc.tweak(&cfg)
			c, err := New(cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error about %q", err, tc.want)
			}
			assertNoSecret(t, "config error", err.Error())
		})
	}
}

func TestDefaults(t *testing.T) {
	c := newTestClient(t, testConfig(task.PVE, Endpoint{URL: "https://PVE1.Example.com"}, Endpoint{URL: "https://[2001:db8::1]"}))
	want := Config{
		MaxConns: 5, PageSize: 500, MaxPages: 10000,
		RequestTimeout: 30 * time.Second, DialTimeout: 5 * time.Second, TLSHandshakeTimeout: 10 * time.Second,
		ResponseHeaderTimeout: 20 * time.Second, IdleConnTimeout: 15 * time.Minute, MaxBodyBytes: 64 << 20,
	}
	got := c.cfg
	if got.MaxConns != want.MaxConns || got.PageSize != want.PageSize || got.MaxPages != want.MaxPages ||
		got.RequestTimeout != want.RequestTimeout || got.DialTimeout != want.DialTimeout ||
		got.TLSHandshakeTimeout != want.TLSHandshakeTimeout || got.ResponseHeaderTimeout != want.ResponseHeaderTimeout ||
		got.IdleConnTimeout != want.IdleConnTimeout || got.MaxBodyBytes != want.MaxBodyBytes {
		t.Errorf("defaults %v", got)
	}
	tr := c.transport
	if tr.MaxConnsPerHost != 5 || tr.MaxIdleConnsPerHost != 5 || tr.MaxIdleConns != 10 || tr.IdleConnTimeout != 15*time.Minute ||
		tr.ResponseHeaderTimeout != 20*time.Second || tr.ForceAttemptHTTP2 || tr.DisableCompression || tr.Proxy != nil {
		t.Errorf("transport %+v", tr)
	}
	if c.eps[0].base != "https://pve1.example.com:8006" || c.eps[1].base != "https://[2001:db8::1]:8006" {
		t.Errorf("endpoints %q, %q", c.eps[0].base, c.eps[1].base)
	}
	pbs := newTestClient(t, testConfig(task.PBS, Endpoint{URL: "https://pbs"}))
	if pbs.cfg.MaxConns != 1 || pbs.eps[0].base != "https://pbs:8007" {
		t.Errorf("pbs: max conns %d, endpoint %s", pbs.cfg.MaxConns, pbs.eps[0].base)
	}
}

// TestSecretNeverPrinted prints Config, *Config and *Client with every verb.
func TestSecretNeverPrinted(t *testing.T) {
	cfg := testConfig(task.PVE, Endpoint{URL: "https://10.0.0.1:8006", Fingerprint: strings.Repeat("AB:", 31) + "AB"})
	cfg.RootCAs = x509.NewCertPool()
	cfg.Limiter = newSemLimiter(1)
	cfg.DialContext = (&net.Dialer{}).DialContext
	c := newTestClient(t, cfg)
	type holder struct {
		Cfg    Config
		Client *Client
	}
	for _, v := range []any{cfg, &cfg, c, holder{Cfg: cfg, Client: c}, []Config{cfg}, map[string]*Client{"x": c}, c.header} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%T %v"} {
			out := fmt.Sprintf(verb, v)
			assertNoSecret(t, fmt.Sprintf("Sprintf(%q, %T)", verb, v), out)
		}
	}
	s := cfg.String()
	if !strings.Contains(s, "TokenSecret:[redacted]") || !strings.Contains(s, testTokenID) || !strings.Contains(s, "10.0.0.1") {
		t.Errorf("String() = %s", s)
	}
}

// TestSecretNeverInErrors forces every kind of error through every public
// call and checks no message or printed error shows the secret.
func TestSecretNeverInErrors(t *testing.T) {
	for _, tc := range errorCases() {
		srv := startTLS(t, tcHandler(tc))
		cfg := testConfig(tc.kind, srv.endpoint())
		if tc.tweak != nil {
			tc.tweak(&cfg, srv)
		}
		cfg.RequestTimeout = 2 * time.Second
		c := newTestClient(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		upid := task.UPID{Kind: tc.kind, Node: "pve1", PID: 1, PStart: 1, StartTime: since, Type: "vzdump", User: "root@pam"}
		_, e1 := c.Nodes(ctx)
		_, e2 := c.ListTasks(ctx, "pve1", ListQuery{})
		_, e3 := c.FetchTasks(ctx, "pve1", since)
		_, e4 := c.TaskStatus(ctx, upid)
		_, e5 := c.ClusterTasks(ctx)
		_, e6 := c.Discover(ctx)
		cancel()
		for _, err := range []error{e1, e2, e3, e4, e5, e6} {
			if err != nil {
				assertNoSecret(t, tc.name, fmtAll(err))
			}
		}
	}
}

// tcHandler is the server side of an error case, without the canceling.
func tcHandler(tc errorCase) http.Handler {
	if tc.handler == nil || tc.ctx != nil {
		return newFakeRemote(tc.kind, "pve1").handler("pve1")
	}
	return tc.handler
}

func TestFingerprint(t *testing.T) {
	cert := newCert(t, "x.test").Leaf
	sum := sha256.Sum256(cert.Raw)
	fp := Fingerprint(cert)
	if len(fp) != 95 || strings.ToUpper(fp) != fp || strings.Count(fp, ":") != 31 {
		t.Fatalf("Fingerprint = %q", fp)
	}
	// What the client pins, in every form config.ParseFingerprintSum reads.
	for _, in := range []string{fp, strings.ToLower(fp), strings.ReplaceAll(fp, ":", ""), " " + fp + " ", "sha256 Fingerprint=" + fp} {
		c := newTestClient(t, testConfig(task.PVE, Endpoint{URL: "https://10.0.0.1:8006", Fingerprint: in}))
		if ep := c.eps[0]; string(ep.pin) != string(sum[:]) || ep.pinS != fp {
			t.Errorf("fingerprint %q: pin %x (%s)", in, ep.pin, ep.pinS)
		}
	}
}
