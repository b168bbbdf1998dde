package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/internal/atomicfile"
	"github.com/taskfleet/taskfleet/proxmox"
)

// Files of the generated self-signed certificate, in the state directory
// (server.state_dir, else server.cache_dir), as PVE keeps pve-ssl.pem.
const (
	selfSignedCert = "api-cert.pem"
	selfSignedKey  = "api-key.pem"
	// selfSignedValidity is the generated certificate's lifetime; an
	// expired one is replaced at the next start (with a new fingerprint).
	selfSignedValidity = 5 * 365 * 24 * time.Hour
)

// apiTLS is the API's certificate: loaded from server.tls_cert and
// server.tls_key (and re-read on SIGHUP) or generated. The handshake reads
// the current one, so a reload needs no restart.
type apiTLS struct {
	certFile, keyFile string // "" for a generated certificate
	cert              atomic.Pointer[tls.Certificate]
	fingerprint       atomic.Pointer[string] // SHA-256 of the leaf, AA:BB:...
	created           bool                   // generated at this start
	replaced          string                 // why an existing generated certificate was replaced
}

// loopbackCheckKey carries a test's notion of loopback in the context of
// dispatch: tests may listen on 127.0.0.2 and call it "not loopback",
// never on another address.
type loopbackCheckKey struct{}

// loopbackCheck returns how serve decides whether the API's bound address
// is loopback: isLoopback, unless the context carries a test's check.
func loopbackCheck(ctx context.Context) func(net.Addr) bool {
	if f, ok := ctx.Value(loopbackCheckKey{}).(func(net.Addr) bool); ok {
		return f
	}
	return isLoopback
}

// apiTLSMode is how the API speaks on its address.
type apiTLSMode int

const (
	tlsPlain      apiTLSMode = iota // plain HTTP
	tlsConfigured                   // HTTPS with server.tls_cert and tls_key
	tlsSelfSigned                   // HTTPS with the self-signed certificate of server.CertDir()
)

// decideTLS applies the rules of [server] to the API on addr (serve's
// setupTLS and check-config both follow them):
//
//   - tls_cert and tls_key: HTTPS with them;
//   - tls = "on", or tls = "auto" on an address that is not loopback:
//     HTTPS with a self-signed certificate, generated on the first start;
//   - insecure_http = true, or a loopback address: plain HTTP;
//   - tls = "off" on an address that is not loopback: refused.
func decideTLS(s config.Server, addr net.Addr, loopback bool) (apiTLSMode, error) {
	switch {
	case s.TLSCert != "":
		return tlsConfigured, nil
	case s.InsecureHTTP:
		return tlsPlain, nil
	case s.TLS == config.TLSOff && !loopback:
		return tlsPlain, fmt.Errorf("server.listen %s is not a loopback address and server.tls is \"off\": API tokens would cross the network in clear; "+
			"set server.insecure_http = true to allow plain HTTP there, or let taskfleet use HTTPS (server.tls = \"auto\")", addr)
	case s.TLS == config.TLSOn || s.TLS == config.TLSAuto && !loopback:
		return tlsSelfSigned, nil
	}
	return tlsPlain, nil
}

// setupTLS decides how the API on addr speaks (decideTLS) and loads or
// generates its certificate. It returns nil for plain HTTP.
func setupTLS(s config.Server, addr net.Addr, loopback bool) (*apiTLS, error) {
	mode, err := decideTLS(s, addr, loopback)
	switch {
	case err != nil:
		return nil, err
	case mode == tlsConfigured:
		t := &apiTLS{certFile: s.TLSCert, keyFile: s.TLSKey}
		if err := t.reload(); err != nil {
			return nil, err
		}
		return t, nil
	case mode == tlsSelfSigned:
		return selfSigned(s.CertDir(), addr)
	}
	return nil, nil
}

// checkTLS checks, writing nothing, what setupTLS will need for the API
// on addr: decideTLS's rules and, when a self-signed certificate would be
// generated (none yet, or expired), a certificate directory that can be
// written. It returns the configuration key a problem is about.
func checkTLS(s config.Server, addr net.Addr, loopback bool) (string, error) {
	mode, err := decideTLS(s, addr, loopback)
	if err != nil {
		return "server.tls", err
	}
	if mode != tlsSelfSigned {
		return "", nil
	}
	if _, ok, _ := currentSelfSigned(s.CertDir()); ok {
		return "", nil
	}
	if err := checkCacheDirWritable(s.CertDir()); err != nil {
		key := "server.cache_dir"
		if s.StateDir != "" {
			key = "server.state_dir"
		}
		return key, fmt.Errorf("the API's self-signed certificate is to be generated there: %w", err)
	}
	return "", nil
}

// reload re-reads the configured certificate and key; on failure the
// current certificate stays. A generated certificate is not re-read.
func (t *apiTLS) reload() error {
	if t.certFile == "" {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(t.certFile, t.keyFile)
	if err != nil {
		return fmt.Errorf("load server.tls_cert %s and server.tls_key %s: %w", t.certFile, t.keyFile, err)
	}
	t.set(&cert)
	return nil
}

// set makes cert the one the handshakes present.
func (t *apiTLS) set(cert *tls.Certificate) {
	fp := proxmox.Fingerprint(cert.Leaf)
	t.cert.Store(cert)
	t.fingerprint.Store(&fp)
}

// Fingerprint returns the SHA-256 fingerprint of the current certificate.
func (t *apiTLS) Fingerprint() string { return *t.fingerprint.Load() }

// config returns the server's TLS configuration.
func (t *apiTLS) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return t.cert.Load(), nil
		},
	}
}

// describe logs the certificate's fingerprint, which clients pin with
// --fingerprint.
func (t *apiTLS) describe(log zerolog.Logger) {
	if t.replaced != "" {
		log.Warn().Str("reason", t.replaced).Msg("the API's self-signed certificate was replaced: clients must pin the new fingerprint")
	}
	ev := log.Info().Str("tls_fingerprint", t.Fingerprint())
	switch {
	case t.certFile != "":
		ev.Str("tls_cert", t.certFile).Msg("api serves HTTPS with the configured certificate")
	case t.created:
		ev.Bool("generated", true).Msg("api serves HTTPS with a self-signed certificate generated now: pin its fingerprint in clients")
	default:
		ev.Msg("api serves HTTPS with its self-signed certificate")
	}
}

// selfSigned loads the self-signed certificate from dir, or generates it
// (ECDSA P-256) when it is missing, unreadable or expired.
func selfSigned(dir string, addr net.Addr) (*apiTLS, error) {
	certPath, keyPath := filepath.Join(dir, selfSignedCert), filepath.Join(dir, selfSignedKey)
	// What a crash while they were written left behind.
	for _, p := range []string{keyPath, certPath} {
		if err := atomicfile.RemoveTemps(p); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
	}
	t := &apiTLS{}
	cert, ok, err := currentSelfSigned(dir)
	if ok {
		t.set(&cert)
		return t, nil
	}
	switch {
	case err == nil:
		t.replaced = "expired on " + cert.Leaf.NotAfter.UTC().Format(time.DateOnly)
	case !errors.Is(err, fs.ErrNotExist):
		// A torn or foreign pair is replaced, as a missing one is.
		t.replaced = err.Error()
	}
	certPEM, keyPEM, err := generateCert(addr, time.Now())
	if err != nil {
		return nil, fmt.Errorf("generate the API's self-signed certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	// The key first: a certificate on disk always has its key.
	if err := atomicfile.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("write the API's key: %w", err)
	}
	if err := atomicfile.WriteFile(certPath, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write the API's certificate: %w", err)
	}
	if cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, fmt.Errorf("load the generated certificate: %w", err)
	}
	t.created = true
	t.set(&cert)
	return t, nil
}

// currentSelfSigned loads the self-signed certificate of dir; ok reports
// whether it can be served (present, readable, not expired), else it is
// generated at the start.
func currentSelfSigned(dir string) (cert tls.Certificate, ok bool, err error) {
	cert, err = tls.LoadX509KeyPair(filepath.Join(dir, selfSignedCert), filepath.Join(dir, selfSignedKey))
	return cert, err == nil && time.Now().Before(cert.Leaf.NotAfter), err
}

// generateCert returns a self-signed certificate and its key, PEM
// encoded, for the host's name, localhost and the bound address.
func generateCert(addr net.Addr, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "taskfleet"
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host, Organization: []string{"taskfleet self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{host, "localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() && !tcp.IP.IsLoopback() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, tcp.IP)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}
