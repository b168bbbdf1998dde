package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/taskfleet/taskfleet/config"
)

// newKey returns an ECDSA P-256 key for certificates.
func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return key, nil
}

// newCertificate returns a self-signed ECDSA P-256 certificate for a node,
// valid for its name and IP, and its SHA-256 fingerprint. The nodes of a
// fleet share one key (a simulator's shortcut: certificates and their
// fingerprints still differ). The validity spans 1990-2200 so that it
// holds at a synctest bubble's fake time (2000) as well as today.
func newCertificate(key *ecdsa.PrivateKey, name string, ip net.IP) (tls.Certificate, string, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("generate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"PVE Cluster Node"}, OrganizationalUnit: []string{"taskfleet sim"}},
		NotBefore:             time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{name, "localhost"},
		IPAddresses:           []net.IP{ip, net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("parse certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, Fingerprint(der), nil
}

// Fingerprint returns the SHA-256 fingerprint of a DER certificate as
// Proxmox shows it: upper-case hex bytes separated by colons.
func Fingerprint(der []byte) string { return config.FormatFingerprint(sha256.Sum256(der)) }
