package proxmox

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/taskfleet/taskfleet/task"
)

// Client talks to one remote. It is safe for concurrent use; concurrent
// calls share the remote's connections and its MaxConns slots.
type Client struct {
	cfg       Config
	eps       []*endpoint
	slots     chan struct{} // the remote's own request slots
	transport *http.Transport
	http      *http.Client
	header    secret
	stats     counters
	closed    atomic.Bool
	// clusterRefused is when the remote last refused GET /cluster/tasks
	// (Unix nanoseconds; 0: never): see ClusterTasksRefused.
	clusterRefused atomic.Int64

	mu          sync.Mutex
	state       []endpointState // per endpoint
	preferred   int             // endpoint to try first; -1 after it failed
	lastTry     time.Time       // start of the last discovery
	discovering bool            // a discovery runs
	discovery   singleflight.Group
}

// Stats are counters since the client was created.
type Stats struct {
	Requests  int64 // HTTP requests sent (each endpoint tried counts)
	Dials     int64 // connection attempts
	NewConns  int64 // connections established (TCP connect and TLS handshake done)
	BytesRead int64 // bytes read from the network (TLS records, compressed bodies)
	BodyBytes int64 // response body bytes after decompression
	OpenConns int64 // connections open now
}

// New validates cfg, applies the defaults and builds the remote's one
// http.Transport. It opens no connection.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("proxmox client for remote %q: %w", cfg.Remote, err)
	}
	c := &Client{
		cfg:       cfg,
		slots:     make(chan struct{}, cfg.MaxConns),
		header:    authHeader(cfg.Kind == task.PBS, cfg.TokenID, cfg.TokenSecret),
		preferred: 0,
	}
	d := &dialer{
		dial:             cfg.DialContext,
		dialTimeout:      cfg.DialTimeout,
		handshakeTimeout: cfg.TLSHandshakeTimeout,
		tls:              make(map[string]*tls.Config, len(cfg.Endpoints)),
		stats:            &c.stats,
	}
	if d.dial == nil {
		d.dial = (&net.Dialer{}).DialContext
	}
	for i, e := range cfg.Endpoints {
		ep, err := parseEndpoint(i, e, cfg.Kind)
		if err != nil {
			return nil, fmt.Errorf("proxmox client for remote %q: %w", cfg.Remote, err)
		}
		if _, dup := d.tls[ep.addr]; dup {
			return nil, fmt.Errorf("proxmox client for remote %q: endpoint %d %q: duplicate address", cfg.Remote, i, e.URL)
		}
		d.tls[ep.addr] = ep.tlsConfig(cfg.RootCAs)
		c.eps = append(c.eps, ep)
	}
	c.state = make([]endpointState, len(c.eps))
	c.transport = newTransport(cfg, d)
	c.http = &http.Client{
		Transport: &authTransport{base: c.transport, header: c.header},
		// Never follow a redirect: the token would go to wherever it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Remote returns the remote id.
func (c *Client) Remote() string { return c.cfg.Remote }

// Kind returns PVE or PBS.
func (c *Client) Kind() task.Kind { return c.cfg.Kind }

// Close closes idle connections; later calls fail with ErrClosed. Requests
// in flight finish normally. Close is safe to call more than once.
func (c *Client) Close() {
	c.closed.Store(true)
	c.transport.CloseIdleConnections()
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{
		Requests:  c.stats.requests.Load(),
		Dials:     c.stats.dials.Load(),
		NewConns:  c.stats.newConns.Load(),
		BytesRead: c.stats.bytesRead.Load(),
		BodyBytes: c.stats.bodyBytes.Load(),
		OpenConns: c.stats.openConns.Load(),
	}
}

// String describes the client without its secret.
func (c *Client) String() string {
	return fmt.Sprintf("proxmox.Client{remote %q %v, %d endpoints}", c.cfg.Remote, c.cfg.Kind, len(c.eps))
}

// Format prints String for every verb, so no verb reaches the secret.
func (c *Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// acquire takes one of the remote's slots, then a global permit. The
// order matters: a remote waiting for its own slots holds no global permit
// that another remote could use.
func (c *Client) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if c.cfg.Limiter != nil {
		if err := c.cfg.Limiter.Acquire(ctx); err != nil {
			<-c.slots
			return err
		}
	}
	return nil
}

// release returns the global permit and the remote's slot.
func (c *Client) release() {
	if c.cfg.Limiter != nil {
		c.cfg.Limiter.Release()
	}
	<-c.slots
}
