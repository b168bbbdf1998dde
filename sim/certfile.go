package sim

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"

	"github.com/taskfleet/taskfleet/internal/atomicfile"
)

// The certificate file (Config.CertFile) keeps a fleet's certificates
// across restarts, so that the fingerprints in a configuration written
// for it stay valid: "taskfleet sim --out DIR" run again presents the
// same certificates. It is PEM: the fleet's key ("EC PRIVATE KEY"), then
// one "CERTIFICATE" block per node with a "Node" header naming it.

// maxCertFile bounds what is read from a certificate file.
const maxCertFile = 64 << 20

// storedCerts is what a certificate file holds.
type storedCerts struct {
	key   *ecdsa.PrivateKey // nil: no file (or no key in it)
	certs map[string]*x509.Certificate
}

// loadCertFile reads a certificate file; a missing file (or path "")
// holds nothing. A damaged file is an error naming it rather than new
// certificates that would silently invalidate every pinned fingerprint.
func loadCertFile(path string) (storedCerts, error) {
	st := storedCerts{certs: map[string]*x509.Certificate{}}
	if path == "" {
		return st, nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read certificates: %w", err)
	}
	if fi.Size() > maxCertFile {
		return st, fmt.Errorf("read certificates: %s is larger than %d bytes", path, maxCertFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return st, fmt.Errorf("read certificates: %w", err)
	}
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "EC PRIVATE KEY":
			if st.key, err = x509.ParseECPrivateKey(b.Bytes); err != nil {
				return st, fmt.Errorf("read certificates %s: block %d: %w", path, n, err)
			}
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return st, fmt.Errorf("read certificates %s: block %d: %w", path, n, err)
			}
			st.certs[b.Headers["Node"]] = c
		}
	}
	if st.key == nil && len(st.certs) > 0 {
		return st, fmt.Errorf("read certificates %s: no EC PRIVATE KEY block", path)
	}
	return st, nil
}

// assign gives the nodes the stored certificates that still fit them
// (same name, the node's address, the stored key) and returns the nodes
// that need a new one.
func (st storedCerts) assign(nodes []*node) []*node {
	var fresh []*node
	for _, n := range nodes {
		c := st.certs[n.name]
		host, _, _ := net.SplitHostPort(n.address())
		if c == nil || st.key == nil || !st.key.PublicKey.Equal(c.PublicKey) || c.VerifyHostname(host) != nil {
			fresh = append(fresh, n)
			continue
		}
		n.cert = tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: st.key, Leaf: c}
		n.fingerprint = Fingerprint(c.Raw)
	}
	return fresh
}

// writeCertFile writes the key and the nodes' certificates to path (mode
// 0600: it holds the key), crash-safely (atomicfile.WriteFile).
func writeCertFile(path string, key *ecdsa.PrivateKey, nodes []*node) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("write certificates: %w", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	for _, n := range nodes {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Node": n.name}, Bytes: n.cert.Certificate[0]})...)
	}
	if err := atomicfile.WriteFile(path, out, 0o600); err != nil {
		return fmt.Errorf("write certificates: %w", err)
	}
	return nil
}
