package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writePair writes a self-signed certificate and its key as cert.pem and
// key.pem in dir.
func writePair(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// serverWith is base with lines added to its [server] table (after line 2).
func serverWith(lines string) string {
	return strings.Replace(base, "listen = \"127.0.0.1:8087\"\n", "listen = \"127.0.0.1:8087\"\n"+lines, 1)
}

func TestTLSSettings(t *testing.T) {
	dir := t.TempDir()
	writePair(t, dir)
	cfg, err := Parse([]byte(serverWith("tls = \"on\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\nstate_dir = \"state\"\n")), "taskfleet.toml", dir)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Server
	if s.TLS != TLSOn || s.TLSCert != filepath.Join(dir, "cert.pem") || s.TLSKey != filepath.Join(dir, "key.pem") ||
		s.StateDir != filepath.Join(dir, "state") || s.CertDir() != s.StateDir || s.InsecureHTTP {
		t.Errorf("server = %+v", s)
	}
	cfg, err = Parse([]byte(serverWith("insecure_http = true\n")), "taskfleet.toml", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Server.InsecureHTTP || cfg.Server.TLS != TLSAuto || cfg.Server.CertDir() != cfg.Server.CacheDir {
		t.Errorf("server = %+v", cfg.Server)
	}
}

func TestTLSProblems(t *testing.T) {
	dir := t.TempDir()
	writePair(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, lines string
		want        []string
	}{
		{"bad mode", "tls = \"yes\"\n", []string{`taskfleet.toml:3: server.tls: want "auto", "on" or "off"`}},
		{"cert without key", "tls_cert = \"cert.pem\"\n", []string{`taskfleet.toml:1: server.tls_key: missing: server.tls_cert is set, and a certificate needs its key`}},
		{"key without cert", "tls_key = \"key.pem\"\n", []string{`taskfleet.toml:1: server.tls_cert: missing: server.tls_key is set, and a key needs its certificate`}},
		{"missing files", "tls_cert = \"nope.pem\"\ntls_key = \"key.pem\"\n", []string{`taskfleet.toml:3: server.tls_cert: cannot load the certificate and key: ` + filepath.Join(dir, "nope.pem") + `: no such file or directory`}},
		{"broken key", "tls_cert = \"cert.pem\"\ntls_key = \"junk.pem\"\n", []string{`taskfleet.toml:3: server.tls_cert: cannot load the certificate and key: failed to parse private key`}},
		{"off with a certificate", "tls = \"off\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n", []string{`taskfleet.toml:3: server.tls: "off" but server.tls_cert is set: remove one of them`}},
		{"insecure with a certificate", "insecure_http = true\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n", []string{`taskfleet.toml:3: server.insecure_http: true asks for plain HTTP, but server.tls_cert is set: remove one of them`}},
		{"insecure with tls on", "insecure_http = true\ntls = \"on\"\n", []string{`taskfleet.toml:3: server.insecure_http: true asks for plain HTTP, but server.tls is "on": remove one of them`}},
		{"wrong types", "insecure_http = \"yes\"\ntls = 1\n", []string{`taskfleet.toml:3: server.insecure_http: want true or false, not a string`, `taskfleet.toml:4: server.tls: want a string, not an integer`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := problemsIn(t, serverWith(c.lines), dir)
			if !slices.Equal(got, c.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			for _, p := range got {
				if strings.Contains(p, "c2VjcmV0") {
					t.Errorf("problem echoes key material: %s", p)
				}
			}
		})
	}
}
