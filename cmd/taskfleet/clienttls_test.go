package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/proxmox"
)

// TestClientTLSFingerprintForms: --fingerprint and TASKFLEET_FINGERPRINT
// take the forms the README promises (openssl's "sha256 Fingerprint=…"
// too), the pin accepts only that certificate, and a value that is not a
// fingerprint (a secret pasted into the wrong place) is never echoed.
func TestClientTLSFingerprintForms(t *testing.T) {
	certPEM, _, err := generateCert(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	fp := proxmox.Fingerprint(cert)
	state := tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	for _, in := range []string{
		fp,
		strings.ToLower(fp),
		strings.ReplaceAll(fp, ":", ""),
		"sha256 Fingerprint=" + fp,
		"SHA256 Fingerprint=" + fp + "\n",
	} {
		cfg, err := clientTLS(in)
		if err != nil {
			t.Errorf("clientTLS(%q): %v", in, err)
			continue
		}
		if err := cfg.VerifyConnection(state); err != nil {
			t.Errorf("clientTLS(%q) refuses the pinned certificate: %v", in, err)
		}
	}
	wrong := strings.Repeat("AB:", 31) + "AB"
	cfg, err := clientTLS("sha256 Fingerprint=" + wrong)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.VerifyConnection(state); err == nil || !strings.Contains(err.Error(), "the daemon's is "+fp+", --fingerprint is "+wrong) {
		t.Errorf("wrong pin: %v, want a mismatch naming both fingerprints", err)
	}

	const secret = "s3cr3t-token-value-0123456789"
	for _, in := range []string{secret, "sha256 Fingerprint=" + secret} {
		_, err := clientTLS(in)
		if err == nil || strings.Contains(err.Error(), secret) || !strings.HasPrefix(err.Error(), "--fingerprint: ") {
			t.Errorf("clientTLS(a secret) = %v, want an error about --fingerprint that does not echo it", err)
		}
	}
	if _, err := clientTLS("sha1 Fingerprint=" + strings.Repeat("AB:", 19) + "AB"); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("SHA-1 fingerprint: %v, want a refusal asking for SHA-256", err)
	}
}
