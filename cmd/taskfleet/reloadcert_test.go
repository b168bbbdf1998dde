package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/config"
)

// TestAPIReloadRereadsCertificate: POST /api2/json/reload re-reads
// server.tls_cert and tls_key as SIGHUP does (docs/api.md: "like SIGHUP"),
// also while the cache still loads.
func TestAPIReloadRereadsCertificate(t *testing.T) {
	dir := t.TempDir()
	write := func() string { return writeCertPair(t, dir) }
	first := write()
	cfg := config.Default()
	cfg.Server.TLSCert, cfg.Server.TLSKey = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var logs bytes.Buffer
	d := newDaemon(filepath.Join(dir, "taskfleet.toml"), &cfg, ln, zerolog.New(&logs))
	at, err := setupTLS(cfg.Server, ln.Addr(), true)
	if err != nil {
		t.Fatal(err)
	}
	d.setTLS(at, true, io.Discard)
	if at.Fingerprint() != first {
		t.Fatalf("serving %s, want %s", at.Fingerprint(), first)
	}

	second := write()
	rec := httptest.NewRecorder()
	d.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api2/json/reload", nil))
	if got := at.Fingerprint(); got != second || got == first {
		t.Errorf("after POST /api2/json/reload (status %d) the API serves %s, want the new certificate %s", rec.Code, got, second)
	}
	if !strings.Contains(logs.String(), `"tls_fingerprint":"`+second+`"`) {
		t.Errorf("certificate reload not logged:\n%s", logs.String())
	}
}

// writeCertPair writes a new certificate and its key to dir/cert.pem and
// dir/key.pem and returns the certificate's fingerprint.
func writeCertPair(t *testing.T, dir string) string {
	t.Helper()
	certPEM, keyPEM, err := generateCert(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return fingerprintOf(pair)
}
