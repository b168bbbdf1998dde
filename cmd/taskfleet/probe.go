package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/task"
)

// A probe talks to one Proxmox endpoint while a remote is being added:
// first to look at its certificate (trust on first use), then, pinned to
// the fingerprint the user confirmed, with the API token.

// maxProbeAnswer bounds an answer read by a probe (node and permission
// lists are small).
const maxProbeAnswer = 4 << 20

// certFingerprint returns the SHA-256 fingerprint of a certificate as
// Proxmox shows it.
func certFingerprint(c *x509.Certificate) string {
	return config.FormatFingerprint(sha256.Sum256(c.Raw))
}

// peekCertificate connects to base ("https://host:port") and returns the
// leaf certificate it presents, without verifying it.
func peekCertificate(ctx context.Context, base string) (*x509.Certificate, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", base, err)
	}
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}} // the certificate is what we look at
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", base, err)
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("connect %s: no certificate presented", base)
	}
	return certs[0], nil
}

// probe is a client of one endpoint pinned to a fingerprint.
type probe struct {
	base    string // "https://host:port"
	kind    task.Kind
	tokenID string
	secret  config.Secret
	roots   *x509.CertPool // for an endpoint without a pin; nil: system roots
	hc      *http.Client
}

// newProbe returns a probe of base that accepts only the certificate
// with fingerprint pin or, without a pin, one that p.roots (default: the
// system's) verify.
func newProbe(base, pin string, kind task.Kind, tokenID string, secret config.Secret, timeout time.Duration) *probe {
	p := &probe{base: base, kind: kind, tokenID: tokenID, secret: secret}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // pinned below instead
			MinVersion:         tls.VersionTLS12,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("no certificate presented")
				}
				if pin == "" {
					return verifyChain(cs, p.roots)
				}
				if got := certFingerprint(cs.PeerCertificates[0]); got != pin {
					return fmt.Errorf("certificate fingerprint %s, not the confirmed %s", got, pin)
				}
				return nil
			},
		},
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	p.hc = &http.Client{Transport: tr, Timeout: timeout}
	return p
}

// verifyChain verifies the presented chain against roots and the host name.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	opts := x509.VerifyOptions{Roots: roots, DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// close closes the probe's connections.
func (p *probe) close() { p.hc.CloseIdleConnections() }

// httpError is an answer other than 200.
type httpError struct {
	status int
	text   string // the reason phrase or message, clipped
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %s", e.status, e.text) }

// statusOf returns the HTTP status of an httpError, or 0.
func statusOf(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.status
	}
	return 0
}

// get sends GET /api2/json/path with the token (as kind wants it) and
// decodes the answer's data into out. It returns the response's Server
// header too (PVE's says pve-api-daemon).
func (p *probe) get(ctx context.Context, path string, out any) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/api2/json/"+path, nil)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", path, err)
	}
	if p.tokenID != "" {
		if p.kind == task.PBS {
			req.Header.Set("Authorization", "PBSAPIToken="+p.tokenID+":"+p.secret.Reveal())
		} else {
			req.Header.Set("Authorization", "PVEAPIToken="+p.tokenID+"="+p.secret.Reveal())
		}
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	server := resp.Header.Get("Server")
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxProbeAnswer))
	if err != nil {
		return server, fmt.Errorf("GET %s: read answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		_, reason, _ := strings.Cut(resp.Status, " ")
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Message != "" {
			reason = e.Message
		} else if t := strings.TrimSpace(string(raw)); t != "" && !strings.HasPrefix(t, "{") {
			reason = t
		}
		return server, fmt.Errorf("GET %s: %w", path, &httpError{status: resp.StatusCode, text: clipText(strings.TrimSpace(reason), 200)})
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return server, fmt.Errorf("GET %s: decode answer: %w", path, err)
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return server, fmt.Errorf("GET %s: decode answer: %w", path, err)
		}
	}
	return server, nil
}

// versionAnswer is the answer of GET /version.
type versionAnswer struct {
	Version string `json:"version"`
	Release string `json:"release"`
}

// clusterMember is an entry of GET /cluster/status.
type clusterMember struct {
	Type   string  `json:"type"` // "cluster" or "node"
	Name   string  `json:"name"`
	IP     string  `json:"ip"`
	Local  pveBool `json:"local"`
	Online pveBool `json:"online"`
}

// nodeEntry is an entry of GET /nodes.
type nodeEntry struct {
	Node           string `json:"node"`
	Status         string `json:"status"`
	SSLFingerprint string `json:"ssl_fingerprint"`
}

// pveBool is a Proxmox boolean: 0/1, true/false, or those as strings (Perl).
type pveBool bool

// UnmarshalJSON reads any of the forms.
func (f *pveBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	*f = pveBool(s == "1" || s == "true")
	return nil
}

// permissions is the answer of GET /access/permissions: path → privilege
// → 1 (PVE) or true (PBS), meaning granted (and propagated).
type permissions map[string]map[string]json.RawMessage

// hasPrivilege reports whether perms grant priv on path.
func hasPrivilege(perms permissions, path, priv string) bool {
	v, ok := perms[path][priv]
	if !ok {
		return false
	}
	s := strings.Trim(string(v), `"`)
	return s != "0" && s != "false" && s != "null"
}
