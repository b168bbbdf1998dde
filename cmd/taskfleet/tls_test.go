package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/sim"
)

// notLoopbackAddr is the address the TLS tests treat as "not loopback":
// 127.0.0.2 is a loopback address the kernel answers, and the tests give
// serve a loopback check that says no for it (and only for it).
const notLoopbackIP = "127.0.0.2"

// notLoopbackCtx returns ctx with the loopback check of the TLS tests.
func notLoopbackCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, loopbackCheckKey{}, func(a net.Addr) bool {
		tcp, ok := a.(*net.TCPAddr)
		return ok && tcp.IP.IsLoopback() && !tcp.IP.Equal(net.ParseIP(notLoopbackIP))
	})
}

// freeNotLoopbackAddr returns a free port on 127.0.0.2, or skips when the
// host does not answer that address.
func freeNotLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", notLoopbackIP+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", notLoopbackIP, err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// notLoopbackAnyPort is the listen address of the daemons the TLS tests
// start on 127.0.0.2 (any free port, read from the log with apiURL); it
// skips when the host does not answer that address.
func notLoopbackAnyPort(t *testing.T) string {
	t.Helper()
	freeNotLoopbackAddr(t)
	return notLoopbackIP + ":0"
}

// apiURL waits until serve logs where its API listens and returns the
// API's base URL.
func (p *inProcess) apiURL(t *testing.T) string {
	t.Helper()
	return apiURL(t, p.stderr.String, func() bool { return !p.exited() })
}

// serveConfig writes a daemon configuration for fleet listening on addr
// with the given extra [server] lines and the test tokens, and a file
// holding the ops token's secret; it returns both paths.
func serveConfig(t *testing.T, fleet *sim.Fleet, addr, serverLines string) (cfgPath, tokenFile string) {
	t.Helper()
	dir := t.TempDir()
	cfgPath = writeConfig(t, fleet, dir, addr, tokensTOML)
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), "[server]\n", "[server]\n"+serverLines, 1)
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile = filepath.Join(dir, "ops.secret")
	if err := os.WriteFile(tokenFile, []byte(opsSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, tokenFile
}

// inProcess is a serve running in the test process.
type inProcess struct {
	cancel         context.CancelFunc
	done           chan struct{} // closed when serve returned code
	code           int
	stdout, stderr syncBuffer
}

func startServe(t *testing.T, ctx context.Context, cfgPath string) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	p := &inProcess{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.code = dispatch(ctx, []string{"serve", "--config", cfgPath}, &p.stdout, &p.stderr)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// exited reports whether serve has returned.
func (p *inProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the serve and returns its exit code.
func (p *inProcess) stop(t *testing.T) int {
	t.Helper()
	p.cancel()
	select {
	case <-p.done:
		return p.code
	case <-time.After(30 * time.Second):
		t.Fatal("serve still running 30 s after its context ended")
	}
	return -1
}

var fingerprintLine = regexp.MustCompile(`Certificate fingerprint \(SHA-256\): ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})\n`)

// waitFingerprint waits until serve has printed its fingerprint.
func (p *inProcess) waitFingerprint(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if m := fingerprintLine.FindStringSubmatch(p.stdout.String()); m != nil {
			return m[1]
		}
		if p.exited() {
			t.Fatalf("serve exited with %d:\n%s", p.code, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no fingerprint printed; stdout %q", p.stdout.String())
	return ""
}

// runClient runs the tasks client in process.
func runClient(args ...string) (code int, stdout, stderr string) {
	var out, errb syncBuffer
	code = dispatch(context.Background(), append([]string{"tasks"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// TestServeGeneratesCertificate: serve on an address that is not loopback
// without a certificate generates one in the cache dir, prints its
// fingerprint, and a client pinned to it connects; a wrong pin and the
// system roots are refused; a restart keeps the certificate.
func TestServeGeneratesCertificate(t *testing.T) {
	t.Parallel()
	fleet := newFleet(t, sim.Config{Seed: 5, PVEClusters: 1, NodesPerCluster: 1, PBSServers: 1, History: 6 * time.Hour, IndexSize: 50})
	cfgPath, tokenFile := serveConfig(t, fleet, notLoopbackAnyPort(t), "")
	ctx := notLoopbackCtx(context.Background())

	p := startServe(t, ctx, cfgPath)
	fp := p.waitFingerprint(t)
	url := p.apiURL(t)
	if !strings.HasPrefix(url, "https://"+notLoopbackIP+":") || !strings.Contains(p.stdout.String(), url) {
		t.Errorf("stdout %q does not name %s", p.stdout.String(), url)
	}
	if !strings.Contains(p.stderr.String(), `"tls_fingerprint":"`+fp+`"`) || !strings.Contains(p.stderr.String(), `"generated":true`) {
		t.Errorf("fingerprint not logged as generated:\n%s", tail(p.stderr.String(), 3000))
	}
	cacheDir := filepath.Join(filepath.Dir(cfgPath), "cache")
	if st, err := os.Stat(filepath.Join(cacheDir, selfSignedKey)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v; want mode 0600", st, err)
	}
	waitReadyTLS(t, url, fp)

	if code, out, errs := runClient("refresh", "--url", url, "--fingerprint", fp, "--token-file", tokenFile, "--wait"); code != 0 {
		t.Fatalf("pinned refresh: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, errs := runClient("list", "--url", url, "--fingerprint", fp, "--token-file", tokenFile, "--json", "--limit", "3")
	var list struct {
		Data  []api.TaskListItem `json:"data"`
		Total int                `json:"total"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Data) == 0 || list.Total < len(list.Data) {
		t.Errorf("pinned client: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	wrong := strings.Repeat("AB:", 31) + "AB"
	code, _, errs = runClient("list", "--url", url, "--fingerprint", wrong, "--token-file", tokenFile)
	if code != exitFailure || !strings.Contains(errs, "certificate fingerprint mismatch: the daemon's is "+fp) {
		t.Errorf("wrong pin: exit %d, stderr %q", code, errs)
	}
	code, _, errs = runClient("list", "--url", url, "--token-file", tokenFile)
	if code != exitFailure || !strings.Contains(errs, "--fingerprint "+fp) {
		t.Errorf("system roots: exit %d, stderr %q; want a refusal naming the fingerprint to pin", code, errs)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("serve exited with %d", code)
	}

	// A restart serves the same certificate.
	p = startServe(t, ctx, cfgPath)
	if again := p.waitFingerprint(t); again != fp {
		t.Errorf("fingerprint after restart %s, want %s", again, fp)
	}
	if strings.Contains(p.stderr.String(), `"generated":true`) {
		t.Error("certificate generated again on restart")
	}
}

// waitReadyTLS waits until /readyz answers 200 over HTTPS pinned to fp.
func waitReadyTLS(t *testing.T, url, fp string) {
	t.Helper()
	cfg, err := clientTLS(fp)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := c.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s/readyz not ready within a minute", url)
}

// TestServePlainHTTPNeedsLoopback: plain HTTP on an address that is not
// loopback is refused at start, naming the keys, unless insecure_http is
// set, which logs a warning.
func TestServePlainHTTPNeedsLoopback(t *testing.T) {
	t.Parallel()
	addr := notLoopbackAnyPort(t)
	fleet := newFleet(t, sim.Config{Seed: 6, PVEClusters: 1, NodesPerCluster: 1, History: time.Hour, IndexSize: 20})
	ctx := notLoopbackCtx(context.Background())

	cfgPath, _ := serveConfig(t, fleet, addr, "tls = \"off\"\n")
	var stdout, stderr syncBuffer
	code := dispatch(ctx, []string{"serve", "--config", cfgPath}, &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), `server.tls is \"off\"`) || !strings.Contains(stderr.String(), "server.insecure_http = true") {
		t.Errorf("plain HTTP on %s: exit %d, logs:\n%s", addr, code, stderr.String())
	}

	cfgPath, tokenFile := serveConfig(t, fleet, addr, "insecure_http = true\n")
	p := startServe(t, ctx, cfgPath)
	c := &apiClient{t: t, base: p.apiURL(t)}
	c.waitReadyWhile(func() bool {
		if p.exited() {
			t.Fatalf("serve exited with %d:\n%s", p.code, p.stderr.String())
		}
		return true
	})
	if !strings.Contains(p.stderr.String(), `"level":"warn"`) || !strings.Contains(p.stderr.String(), "insecure_http") {
		t.Errorf("no warning about insecure_http:\n%s", tail(p.stderr.String(), 3000))
	}
	if code, _, errs := runClient("list", "--url", c.base, "--token-file", tokenFile, "--limit", "1"); code != 0 {
		t.Errorf("client over plain HTTP: exit %d, stderr %q", code, errs)
	}
}

// TestClientTokenAndURL: the client reads the token from --token-file or
// $TASKFLEET_TOKEN, warns before sending it over plain HTTP to a host
// that is not loopback, and checks --url and --fingerprint.
func TestClientTokenAndURL(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("  file-secret  \nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TASKFLEET_TOKEN", "env-secret")
	t.Setenv("TASKFLEET_URL", "")
	t.Setenv("TASKFLEET_FINGERPRINT", "")
	var warn strings.Builder
	c := client{base: "http://192.0.2.1:8087", tokenFile: file}
	if err := c.fill(time.Second, &warn); err != nil || c.token != "file-secret" {
		t.Errorf("token file: %q, %v", c.token, err)
	}
	if !strings.Contains(warn.String(), "plain HTTP to 192.0.2.1:8087") {
		t.Errorf("no plain-HTTP warning: %q", warn.String())
	}
	warn.Reset()
	c = client{base: "http://localhost:8087"}
	if err := c.fill(time.Second, &warn); err != nil || c.token != "env-secret" || warn.Len() != 0 {
		t.Errorf("env token on loopback: %q, %v, warning %q", c.token, err, warn.String())
	}
	for _, bad := range []client{
		{base: "ftp://h:1"},
		{base: "http://h:1", fingerprint: strings.Repeat("AB:", 31) + "AB"},
		{base: "https://h:1", fingerprint: "AB:CD"},
		{base: "https://h:1", tokenFile: filepath.Join(dir, "missing")},
	} {
		if err := bad.fill(time.Second, &warn); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// TestConfiguredCertificateReload: server.tls_cert and tls_key are served
// and re-read by reload (SIGHUP); a broken pair keeps the current one.
func TestConfiguredCertificateReload(t *testing.T) {
	dir := t.TempDir()
	write := func() string { return writeCertPair(t, dir) }
	first := write()
	s := defaultServer()
	s.TLSCert, s.TLSKey = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	at, err := setupTLS(s, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, true)
	if err != nil || at == nil {
		t.Fatalf("setupTLS: %v, %v", at, err)
	}
	if at.Fingerprint() != first {
		t.Errorf("fingerprint %s, want %s", at.Fingerprint(), first)
	}
	second := write()
	if err := at.reload(); err != nil || at.Fingerprint() != second || first == second {
		t.Errorf("after reload: %s, %v; want %s", at.Fingerprint(), err, second)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := at.reload(); err == nil || !strings.Contains(err.Error(), "server.tls_key") || at.Fingerprint() != second {
		t.Errorf("broken pair: %v, fingerprint %s; want an error and %s kept", err, at.Fingerprint(), second)
	}
	got, err := at.config().GetCertificate(nil)
	if err != nil || fingerprintOf(*got) != second {
		t.Errorf("handshake certificate %v, %v", got, err)
	}
}

func defaultServer() config.Server { return config.Default().Server }

func fingerprintOf(c tls.Certificate) string { return proxmox.Fingerprint(c.Leaf) }
