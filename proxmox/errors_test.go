package proxmox

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// errorCase is one way a request can fail.
type errorCase struct {
	name     string
	kind     task.Kind
	handler  http.HandlerFunc           // the server's answer
	tweak    func(*Config, *testServer) // changes the client's config
	ctx      func(arrived <-chan struct{}) context.Context
	wantKind string
	check    func(t *testing.T, err error, srv *testServer)
}

const pveJSON = "application/json;charset=UTF-8"

func errorCases() []errorCase {
	other := newCert(&testing.T{}, "127.0.0.1")
	otherPool := x509.NewCertPool()
	otherPool.AddCert(other.Leaf)
	wrongPin := Fingerprint(other.Leaf)
	return []errorCase{
		{
			name: "401 bad token", kind: task.PVE, wantKind: "auth",
			tweak: func(c *Config, _ *testServer) { c.TokenSecret = testSecret + "-old" },
			check: func(t *testing.T, err error, _ *testServer) {
				var e *AuthError
				if !errors.As(err, &e) || e.StatusCode != 401 || !strings.Contains(e.Message, "Authentication failed!") {
					t.Errorf("want AuthError 401 'Authentication failed!', got %#v", err)
				}
			},
		},
		{
			name: "401 pbs", kind: task.PBS, wantKind: "auth",
			tweak: func(c *Config, _ *testServer) { c.TokenSecret = testSecret + "-old" },
			check: func(t *testing.T, err error, _ *testServer) {
				var e *AuthError
				if !errors.As(err, &e) || !strings.Contains(e.Message, "authentication failed") {
					t.Errorf("want AuthError with PBS text, got %#v", err)
				}
			},
		},
		{
			name: "403", kind: task.PVE, wantKind: "auth",
			handler: func(w http.ResponseWriter, r *http.Request) {
				rawResponse(w, 403, "Permission check failed", "application/json", `{"data":null}`, -1)
			},
			check: func(t *testing.T, err error, _ *testServer) {
				var e *AuthError
				if !errors.As(err, &e) || e.StatusCode != 403 || e.Message != "Permission check failed" {
					t.Errorf("want AuthError 403, got %#v", err)
				}
			},
		},
		{
			name: "595 node offline", kind: task.PVE, wantKind: "node_offline",
			handler: func(w http.ResponseWriter, r *http.Request) {
				rawResponse(w, 595, "Connection refused", "", "", -1)
			},
			check: func(t *testing.T, err error, _ *testServer) {
				var e *NodeOfflineError
				if !errors.As(err, &e) || e.StatusCode != 595 || e.Reason != "Connection refused" {
					t.Errorf("want NodeOfflineError 595, got %#v", err)
				}
			},
		},
		{
			name: "596 node offline", kind: task.PVE, wantKind: "node_offline",
			handler: func(w http.ResponseWriter, r *http.Request) {
				rawResponse(w, 596, "Connection timed out", "", "", -1)
			},
		},
		{
			name: "500 pve json error", kind: task.PVE, wantKind: "server",
			handler: func(w http.ResponseWriter, r *http.Request) {
				rawResponse(w, 500, "can't lock file '/var/lock/qemu-server/lock-203.conf' - got timeout", pveJSON,
					`{"data":null,"message":"can't lock file '/var/lock/qemu-server/lock-203.conf' - got timeout\n"}`, -1)
			},
			check: func(t *testing.T, err error, _ *testServer) {
				var e *ServerError
				if !errors.As(err, &e) || e.StatusCode != 500 || e.Message != "can't lock file '/var/lock/qemu-server/lock-203.conf' - got timeout" {
					t.Errorf("want ServerError 500 with the message once, got %#v", err)
				}
			},
		},
		{
			name: "400 pve parameter errors", kind: task.PVE, wantKind: "server",
			handler: func(w http.ResponseWriter, r *http.Request) {
				rawResponse(w, 400, "Parameter verification failed.", pveJSON,
					`{"errors":{"since":"type check ('integer') failed - got 'x'\n"},"data":null,"message":"Parameter verification failed.\n"}`, -1)
			},
			check: func(t *testing.T, err error, _ *testServer) {
				var e *ServerError
				if !errors.As(err, &e) || e.Message != "Parameter verification failed.: since: type check ('integer') failed - got 'x'" {
					t.Errorf("want ServerError with parameter errors, got %#v", err)
				}
			},
		},
		{
			name: "500 pbs plain text", kind: task.PBS, wantKind: "server",
			handler: func(w http.ResponseWriter, r *http.Request) {
				rawResponse(w, 500, "Internal Server Error", pveJSON, "unable to read task archive - No such file or directory (os error 2)", -1)
			},
			check: func(t *testing.T, err error, _ *testServer) {
				var e *ServerError
				if !errors.As(err, &e) || !strings.HasSuffix(e.Message, "unable to read task archive - No such file or directory (os error 2)") {
					t.Errorf("want ServerError with the PBS text, got %#v", err)
				}
			},
		},
		{
			name: "server echoes the token", kind: task.PBS, wantKind: "server",
			handler: func(w http.ResponseWriter, r *http.Request) {
				rawResponse(w, 400, "Bad Request", pveJSON, "cannot parse "+r.Header.Get("Authorization"), -1)
			},
			check: func(t *testing.T, err error, _ *testServer) {
				if !strings.Contains(err.Error(), "cannot parse PBSAPIToken="+testTokenID+":[redacted]") {
					t.Errorf("echoed secret not redacted: %v", err)
				}
			},
		},
		{
			name: "malformed json", kind: task.PVE, wantKind: "malformed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				rawResponse(w, 200, "OK", pveJSON, `{"data":[{"upid":"UPID:a:1"},}`, -1)
			},
			check: func(t *testing.T, err error, _ *testServer) {
				var e *MalformedError
				if !errors.As(err, &e) || e.Offset != 28 || e.Reason != "invalid JSON in task item 1" {
					t.Errorf("want MalformedError in item 1 at byte 28, got %#v", err)
				}
			},
		},
		{
			name: "wrong shape", kind: task.PVE, wantKind: "malformed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				rawResponse(w, 200, "OK", pveJSON, `{"data":{"upid":"x"}}`, -1)
			},
			check: func(t *testing.T, err error, _ *testServer) {
				var e *MalformedError
				if !errors.As(err, &e) || e.Reason != "data: got JSON object, want array" {
					t.Errorf("want MalformedError 'data: got JSON object, want array', got %#v", err)
				}
			},
		},
		{
			name: "no data", kind: task.PVE, wantKind: "malformed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				rawResponse(w, 200, "OK", pveJSON, `{"success":0}`, -1)
			},
		},
		{
			name: "trailing data", kind: task.PVE, wantKind: "malformed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				rawResponse(w, 200, "OK", pveJSON, `{"data":[]} {"data":[]}`, -1)
			},
		},
		{
			name: "empty body", kind: task.PVE, wantKind: "malformed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				rawResponse(w, 200, "OK", pveJSON, "", -1)
			},
		},
		{
			name: "truncated body", kind: task.PVE, wantKind: "malformed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				rawResponse(w, 200, "OK", pveJSON, `{"data":[{"upid":"UPID:pve1:000`, 400)
			},
			check: func(t *testing.T, err error, _ *testServer) {
				var e *MalformedError
				if !errors.As(err, &e) || e.Reason != "truncated body" || e.Offset != 31 || !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("want MalformedError 'truncated body' at 31, got %#v", err)
				}
			},
		},
		{
			name: "oversized body", kind: task.PVE, wantKind: "too_large",
			tweak: func(c *Config, _ *testServer) { c.MaxBodyBytes = 1000 },
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = fmt.Fprintf(w, `{"data":[],"pad":"%s"}`, strings.Repeat("x", 5000))
			},
			check: func(t *testing.T, err error, _ *testServer) {
				var e *BodyTooLargeError
				if !errors.As(err, &e) || e.Limit != 1000 {
					t.Errorf("want BodyTooLargeError, got %#v", err)
				}
			},
		},
		{
			name: "redirect not followed", kind: task.PVE, wantKind: "server",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "https://198.51.100.1/steal", http.StatusFound)
			},
			check: func(t *testing.T, err error, _ *testServer) {
				var e *ServerError
				if !errors.As(err, &e) || e.StatusCode != 302 {
					t.Errorf("want ServerError 302, got %#v", err)
				}
			},
		},
		{
			name: "wrong fingerprint", kind: task.PVE, wantKind: "cert_mismatch",
			tweak: func(c *Config, _ *testServer) { c.Endpoints[0].Fingerprint = strings.ToLower(wrongPin) },
			check: func(t *testing.T, err error, srv *testServer) {
				var e *CertMismatchError
				if !errors.As(err, &e) || e.Seen != srv.FP || e.Expected != wrongPin {
					t.Fatalf("want CertMismatchError seen %s expected %s, got %#v", srv.FP, wrongPin, err)
				}
				if !strings.Contains(err.Error(), "seen "+srv.FP) {
					t.Errorf("message does not show the fingerprint seen: %v", err)
				}
			},
		},
		{
			name: "untrusted certificate", kind: task.PVE, wantKind: "cert_mismatch",
			tweak: func(c *Config, _ *testServer) { c.Endpoints[0].Fingerprint, c.RootCAs = "", otherPool },
			check: func(t *testing.T, err error, srv *testServer) {
				var e *CertMismatchError
				var ua x509.UnknownAuthorityError
				if !errors.As(err, &e) || e.Seen != srv.FP || e.Expected != "" || !errors.As(err, &ua) {
					t.Errorf("want CertMismatchError (unknown authority) seen %s, got %#v", srv.FP, err)
				}
			},
		},
		{
			name: "unreachable", kind: task.PVE, wantKind: "unreachable",
			tweak: func(c *Config, _ *testServer) { c.Endpoints[0].URL = "https://" + closedAddr() },
			check: func(t *testing.T, err error, _ *testServer) {
				var e *UnreachableError
				if !errors.As(err, &e) || e.Phase != "dial" || !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("want UnreachableError (dial, refused), got %#v", err)
				}
			},
		},
		{
			name: "connection closed without an answer", kind: task.PVE, wantKind: "unreachable",
			handler: func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
			},
			check: func(t *testing.T, err error, _ *testServer) {
				var e *UnreachableError
				if !errors.As(err, &e) || e.Phase != "request" || !errors.Is(err, io.EOF) {
					t.Errorf("want UnreachableError (request, EOF), got %#v", err)
				}
			},
		},
		{
			name: "canceled by caller", kind: task.PVE, wantKind: "canceled",
			handler: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			ctx: func(arrived <-chan struct{}) context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				go func() {
					<-arrived
					cancel()
				}()
				return ctx
			},
			check: func(t *testing.T, err error, _ *testServer) {
				var e *CanceledError
				var te *TimeoutError
				if !errors.As(err, &e) || !errors.Is(err, context.Canceled) || errors.As(err, &te) {
					t.Errorf("want CanceledError wrapping context.Canceled, got %#v", err)
				}
			},
		},
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestErrorClasses forces every class of error and checks its type, its
// ErrorKind, that its message names remote, node and endpoint, and that
// neither its message nor its printed fields contain the token secret.
func TestErrorClasses(t *testing.T) {
	for _, tc := range errorCases() {
		t.Run(tc.name, func(t *testing.T) {
			arrived := make(chan struct{}, 1)
			var h http.Handler = newFakeRemote(tc.kind, "pve1").handler("pve1")
			if tc.handler != nil {
				h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Header.Get("Authorization") != string(authHeader(tc.kind == task.PBS, testTokenID, testSecret)) {
						t.Errorf("wrong Authorization header")
					}
					select {
					case arrived <- struct{}{}:
					default:
					}
					tc.handler(w, r)
				})
			}
			srv := startTLS(t, h)
			cfg := testConfig(tc.kind, srv.endpoint())
			if tc.tweak != nil {
				tc.tweak(&cfg, srv)
			}
			c := newTestClient(t, cfg)
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx(arrived)
			}
			node := "pve1"
			if tc.kind == task.PBS {
				node = "localhost"
			}
			_, err := c.ListTasks(ctx, node, ListQuery{Since: 1700000000})
			if err == nil {
				t.Fatal("no error")
			}
			if got := ErrorKind(err); got != tc.wantKind {
				t.Errorf("ErrorKind = %q, want %q (%v)", got, tc.wantKind, err)
			}
			if tc.check != nil {
				tc.check(t, err, srv)
			}
			u, _ := url.Parse(cfg.Endpoints[0].URL)
			msg := err.Error()
			for _, part := range []string{`remote "east"`, fmt.Sprintf("node %q", node), u.Host + "/api2/json/nodes/" + node + "/tasks"} {
				if !strings.Contains(msg, part) {
					t.Errorf("message lacks %q: %s", part, msg)
				}
			}
			if strings.Contains(msg, "since=") {
				t.Errorf("message shows the query: %s", msg)
			}
			for _, s := range []string{msg, fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%#v", errors.Unwrap(err))} {
				assertNoSecret(t, "error", s)
			}
			t.Logf("%s", msg)
		})
	}
}

// TestCertificateTrusted checks the happy paths of both TLS modes: a pin in
// either case, and verification against RootCAs.
func TestCertificateTrusted(t *testing.T) {
	f := newFakeRemote(task.PVE, "pve1")
	srv := startTLS(t, f.handler("pve1"))
	pool := x509.NewCertPool()
	pool.AddCert(srv.Cert.Leaf)
	for name, ep := range map[string]Endpoint{
		"pin upper":  {URL: srv.URL, Fingerprint: srv.FP},
		"pin lower":  {URL: srv.URL, Fingerprint: strings.ToLower(srv.FP)},
		"root pool":  {URL: srv.URL},
		"localhost ": {URL: strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)},
	} {
		cfg := testConfig(task.PVE, ep)
		cfg.RootCAs = pool
		c := newTestClient(t, cfg)
		if _, err := c.ListTasks(context.Background(), "pve1", ListQuery{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestCanceledBeforeSlot: a call waiting for a slot returns when its
// context ends, with a CanceledError naming no endpoint.
func TestCanceledBeforeSlot(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int32
	srv := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		<-release
		_, _ = w.Write([]byte(`{"data":[]}`))
	}))
	cfg := testConfig(task.PVE, srv.endpoint())
	cfg.MaxConns = 1
	c := newTestClient(t, cfg)
	done := make(chan error)
	go func() {
		_, err := c.ListTasks(context.Background(), "pve1", ListQuery{})
		done <- err
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.ListTasks(ctx, "pve1", ListQuery{})
	var ce *CanceledError
	if !errors.As(err, &ce) || ce.Endpoint != "" || !errors.Is(err, context.Canceled) {
		t.Errorf("want CanceledError without endpoint, got %#v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if arrived.Load() != 1 {
		t.Errorf("server saw %d requests, want 1", arrived.Load())
	}
}

// TestClosed: calls after Close fail with ErrClosed.
func TestClosed(t *testing.T) {
	srv := startTLS(t, newFakeRemote(task.PVE, "pve1").handler("pve1"))
	c := newTestClient(t, testConfig(task.PVE, srv.endpoint()))
	c.Close()
	c.Close()
	if _, err := c.Nodes(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
