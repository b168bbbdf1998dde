package proxmox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// The token used by every test. The secret is distinctive so that a test
// can search any text for it.
const (
	testTokenID = "root@pam!taskfleet"
	testSecret  = "b7f0c0de-5ec2-4e7a-9c1d-7a5c0ffee123"
)

// testConfig returns a config for remote "east" with the test token.
func testConfig(kind task.Kind, eps ...Endpoint) Config {
	return Config{Remote: "east", Kind: kind, TokenID: testTokenID, TokenSecret: testSecret, Endpoints: eps}
}

// newTestClient builds a client and closes it at the end of the test.
func newTestClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// newCert returns a self-signed certificate for hosts (names or IPs),
// valid from 1970 to 2200 so that it also verifies in a synctest bubble,
// whose clock starts in 2000.
func newCert(t testing.TB, hosts ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// testServer is a TLS server for tests, on loopback or on a memNet.
type testServer struct {
	URL   string // https://host:port
	Cert  tls.Certificate
	FP    string       // fingerprint of Cert, "AB:CD:..."
	conns atomic.Int64 // connections accepted
}

// endpoint returns the server as a pinned Endpoint.
func (s *testServer) endpoint() Endpoint { return Endpoint{URL: s.URL, Fingerprint: s.FP} }

// startTLS serves h on a loopback port.
func startTLS(t testing.TB, h http.Handler) *testServer {
	t.Helper()
	ts := &testServer{Cert: newCert(t, "127.0.0.1", "localhost")}
	ts.FP = Fingerprint(ts.Cert.Leaf)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ts.Cert}}
	srv.Config.ConnState = ts.connState
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ts.URL = srv.URL
	return ts
}

// startMem serves h at addr ("host:port") on n.
func startMem(t testing.TB, n *memNet, addr string, h http.Handler) *testServer {
	t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{URL: "https://" + addr, Cert: newCert(t, host)}
	ts.FP = Fingerprint(ts.Cert.Leaf)
	srv := &http.Server{Handler: h, ConnState: ts.connState, ErrorLog: log.New(io.Discard, "", 0)}
	ln := tls.NewListener(n.listen(addr), &tls.Config{Certificates: []tls.Certificate{ts.Cert}, NextProtos: []string{"http/1.1"}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ts
}

func (s *testServer) connState(_ net.Conn, st http.ConnState) {
	if st == http.StateNew {
		s.conns.Add(1)
	}
}

// rawResponse answers like pveproxy does on errors: a status line with a
// free reason phrase (net/http cannot write one), the body, and the
// connection closed afterwards. contentLength < 0 means len(body).
func rawResponse(w http.ResponseWriter, code int, reason, contentType, body string, contentLength int) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	if contentLength < 0 {
		contentLength = len(body)
	}
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Length: %d\r\n", code, reason, contentLength)
	if contentType != "" {
		fmt.Fprintf(buf, "Content-Type: %s\r\n", contentType)
	}
	buf.WriteString("\r\n")
	buf.WriteString(body)
	_ = buf.Flush()
}

// assertNoSecret fails when the secret shows in s.
func assertNoSecret(t testing.TB, what, s string) {
	t.Helper()
	if strings.Contains(s, testSecret) || strings.Contains(s, testSecret[:12]) {
		t.Errorf("%s shows the token secret: %s", what, s)
	}
}

// fmtAll prints err with the verbs that walk into its fields.
func fmtAll(err error) string {
	return fmt.Sprintf("%v %+v %#v %s", err, err, err, err)
}
