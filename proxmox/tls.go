package proxmox

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/taskfleet/taskfleet/config"
)

// sessionCacheSize bounds the TLS sessions an endpoint's cache keeps for
// resumption (sessionCache): one per server name, so one in practice.
const sessionCacheSize = 64

// Fingerprint returns the SHA-256 fingerprint of a certificate in Proxmox's
// format: upper-case hex bytes separated by colons.
func Fingerprint(cert *x509.Certificate) string {
	return config.FormatFingerprint(sha256.Sum256(cert.Raw))
}

// fingerprintError is returned by the pinning check during the handshake;
// the client turns it into a CertMismatchError naming remote, node and URL.
type fingerprintError struct {
	seen, expected string
}

func (e *fingerprintError) Error() string {
	return fmt.Sprintf("certificate fingerprint mismatch: seen %s, expected %s", e.seen, e.expected)
}

// tlsConfig returns the TLS configuration for one endpoint. A pinned
// endpoint skips chain and host name verification and instead compares the
// SHA-256 of the leaf certificate with the pin (Proxmox nodes usually have
// self-signed certificates); VerifyConnection also runs on resumed
// sessions, so resumption cannot bypass the pin. Otherwise the chain is
// verified against roots (nil: the system roots) and the host name.
func (e *endpoint) tlsConfig(roots *x509.CertPool) *tls.Config {
	cfg := &tls.Config{
		ServerName:         e.host,
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"http/1.1"}, // pveproxy speaks HTTP/1.1
		ClientSessionCache: newSessionCache(),
	}
	if e.pin == nil {
		cfg.RootCAs = roots
		return cfg
	}
	pin, pinS := e.pin, e.pinS
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return &fingerprintError{expected: pinS}
		}
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
			return &fingerprintError{seen: config.FormatFingerprint(sum), expected: pinS}
		}
		return nil
	}
	return cfg
}

// certError recognises a refused certificate in err and returns the
// fingerprint seen, the one expected ("" when not pinned) and the cause.
func certError(err error) (seen, expected string, cause error, ok bool) {
	var fe *fingerprintError
	if errors.As(err, &fe) {
		return fe.seen, fe.expected, nil, true
	}
	var ve *tls.CertificateVerificationError
	if errors.As(err, &ve) {
		if len(ve.UnverifiedCertificates) > 0 {
			seen = Fingerprint(ve.UnverifiedCertificates[0])
		}
		return seen, "", ve.Err, true
	}
	return "", "", nil, false
}
