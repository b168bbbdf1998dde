package proxmox

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// counters are the client's statistics, updated atomically.
type counters struct {
	requests  atomic.Int64
	dials     atomic.Int64
	newConns  atomic.Int64
	bytesRead atomic.Int64
	bodyBytes atomic.Int64
	openConns atomic.Int64
}

// connectError marks a failure to establish a connection (dial or TLS
// handshake): the request never reached the server, so the next endpoint
// may be tried.
type connectError struct {
	phase   string        // "dial" or "tls handshake"
	timeout time.Duration // the timeout of that phase
	err     error
}

func (e *connectError) Error() string { return fmt.Sprintf("%s: %v", e.phase, e.err) }
func (e *connectError) Unwrap() error { return e.err }

// dialer opens TLS connections to a remote's endpoints; it is the
// transport's DialTLSContext. Owning the TLS handshake lets every endpoint
// have its own configuration (pin, session cache) and lets the client tell
// "could not connect" apart from later failures.
type dialer struct {
	dial             func(ctx context.Context, network, addr string) (net.Conn, error)
	dialTimeout      time.Duration
	handshakeTimeout time.Duration
	tls              map[string]*tls.Config // by endpoint addr
	stats            *counters
}

func (d *dialer) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	cfg, ok := d.tls[addr]
	if !ok {
		// Cannot happen: requests are only built from endpoint URLs.
		return nil, &connectError{phase: "dial", err: fmt.Errorf("address %s is not an endpoint of this remote", addr)}
	}
	d.stats.dials.Add(1)
	dctx, cancel := context.WithTimeout(ctx, d.dialTimeout)
	raw, err := d.dial(dctx, network, addr)
	cancel()
	if err != nil {
		return nil, &connectError{phase: "dial", timeout: d.dialTimeout, err: err}
	}
	cc := &countingConn{Conn: raw, n: &d.stats.bytesRead, open: &d.stats.openConns}
	conn := tls.Client(cc, cfg)
	hctx, cancel := context.WithTimeout(ctx, d.handshakeTimeout)
	err = conn.HandshakeContext(hctx)
	cancel()
	if err != nil {
		_ = raw.Close()
		return nil, &connectError{phase: "tls handshake", timeout: d.handshakeTimeout, err: err}
	}
	d.stats.newConns.Add(1)
	d.stats.openConns.Add(1)
	cc.counted = true
	return conn, nil
}

// countingConn counts the bytes read from the network and, once its
// handshake succeeded, the connection as open until it is closed.
type countingConn struct {
	net.Conn
	n       *atomic.Int64
	open    *atomic.Int64
	counted bool // set before the conn is shared, read on Close
	closed  atomic.Bool
}

func (c *countingConn) Close() error {
	if c.counted && c.closed.CompareAndSwap(false, true) {
		c.open.Add(-1)
	}
	return c.Conn.Close()
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// newTransport builds the remote's one http.Transport. MaxConnsPerHost
// bounds the connections to each endpoint, MaxIdleConnsPerHost keeps that
// many alive between polls (the default of 2 would close 3 of 5 after every
// burst), and IdleConnTimeout outlives the refresh interval. Compression
// stays on: the transport asks for gzip and decompresses transparently, and
// the body cap applies to the decompressed stream. No proxy is used.
// Requests are GETs of a few hundred bytes, so each connection's write
// buffer is 1 KiB instead of 4 (a larger request is written in pieces);
// responses keep the default 4 KiB read buffer.
func newTransport(cfg Config, d *dialer) *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialTLSContext:         d.dialTLS,
		ForceAttemptHTTP2:      false,
		MaxConnsPerHost:        cfg.MaxConns,
		MaxIdleConnsPerHost:    cfg.MaxConns,
		MaxIdleConns:           cfg.MaxConns * len(cfg.Endpoints),
		IdleConnTimeout:        cfg.IdleConnTimeout,
		ResponseHeaderTimeout:  cfg.ResponseHeaderTimeout,
		MaxResponseHeaderBytes: 64 << 10,
		WriteBufferSize:        writeBufferSize,
	}
}

// writeBufferSize is each connection's write buffer (see newTransport).
const writeBufferSize = 1 << 10

// secret is a string that never prints.
type secret string

// String redacts the secret.
func (secret) String() string { return "[redacted]" }

// GoString redacts the secret.
func (secret) GoString() string { return "[redacted]" }

// Format redacts the secret for every verb.
func (secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "[redacted]") }

// authTransport adds the API token header to every request. Per the
// RoundTripper contract it does not modify the caller's request but a clone.
type authTransport struct {
	base   http.RoundTripper
	header secret // the full Authorization value
}

func (a *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", string(a.header))
	return a.base.RoundTrip(r)
}

// authHeader builds the Authorization value: PVE separates token id and
// secret with '=', PBS with ':'.
func authHeader(pbs bool, id, sec string) secret {
	if pbs {
		return secret("PBSAPIToken=" + id + ":" + sec)
	}
	return secret("PVEAPIToken=" + id + "=" + sec)
}
