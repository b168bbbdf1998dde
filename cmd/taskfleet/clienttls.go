package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/proxmox"
)

// clientTLS returns the client's TLS configuration: with a fingerprint,
// the daemon's leaf certificate must have that SHA-256 (chain and name are
// not checked: it is typically self-signed); without one, the chain is
// verified against the system roots.
func clientTLS(fingerprint string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if fingerprint == "" {
		return cfg, nil
	}
	// config.ParseFingerprint takes every form people paste (openssl's
	// "sha256 Fingerprint=AB:…" too) and never echoes what is not one.
	fp, err := config.ParseFingerprint(fingerprint)
	if err != nil {
		return nil, fmt.Errorf("--fingerprint: %w", err)
	}
	pin, err := hex.DecodeString(strings.ReplaceAll(fp, ":", ""))
	if err != nil {
		return nil, fmt.Errorf("--fingerprint: %w", err)
	}
	cfg.InsecureSkipVerify = true // replaced by the pin below, also on resumed sessions
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the daemon sent no certificate")
		}
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
			return fmt.Errorf("certificate fingerprint mismatch: the daemon's is %s, --fingerprint is %s",
				proxmox.Fingerprint(cs.PeerCertificates[0]), fp)
		}
		return nil
	}
	return cfg, nil
}

// certHint explains an unverifiable daemon certificate: the fingerprint
// seen, to compare with the one the daemon printed and pin it.
func certHint(err error) error {
	var ve *tls.CertificateVerificationError
	if errors.As(err, &ve) && len(ve.UnverifiedCertificates) > 0 {
		return fmt.Errorf("%w\n  the daemon's certificate is not trusted by the system roots; if its fingerprint %s is the one the daemon printed at start, pin it: --fingerprint %s",
			err, proxmox.Fingerprint(ve.UnverifiedCertificates[0]), proxmox.Fingerprint(ve.UnverifiedCertificates[0]))
	}
	return err
}

// isLoopbackHost reports whether host is "localhost" or a loopback IP.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
