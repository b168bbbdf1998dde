package proxmox

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/task"
)

// Defaults applied by [New] to zero fields of [Config]. Each is a trade-off;
// the reason is given next to it.
const (
	// DefaultMaxConnsPVE is the per-remote cap for a PVE cluster, as in
	// Proxmox Datacenter Manager (CONNECTIONS_PER_PVE_REMOTE): enough to
	// list several nodes at once without crowding pveproxy's 3 workers.
	DefaultMaxConnsPVE = 5
	// DefaultMaxConnsPBS is the per-remote cap for a backup server: it has
	// one node, so one list at a time is all a poll needs.
	DefaultMaxConnsPBS = 1
	// DefaultPageSize is the number of tasks asked for per list request. A
	// PVE node holds about 1000-2000 finished tasks, so a full backfill
	// takes a handful of requests, while one page stays well below the
	// body cap (a task item is about 250 bytes).
	DefaultPageSize = 500
	// DefaultRequestTimeout bounds one HTTP exchange, body included.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultDialTimeout bounds the TCP connect: a node that does not
	// answer a SYN within 5 s is treated as down and the next endpoint tried.
	DefaultDialTimeout = 5 * time.Second
	// DefaultTLSHandshakeTimeout bounds the TLS handshake.
	DefaultTLSHandshakeTimeout = 10 * time.Second
	// DefaultResponseHeaderTimeout bounds the wait for the status line after
	// the request was written (pveproxy delays 401s by 3 s).
	DefaultResponseHeaderTimeout = 20 * time.Second
	// DefaultIdleConnTimeout is how long the client keeps an idle
	// connection. A PVE node closes one idle for 5 s (sim/doc.go), so
	// between refreshes the client notices the close and the next request
	// connects anew, resuming the TLS session (sessioncache.go); PBS keeps
	// idle connections, which are then reused by refreshes up to this
	// long apart (the default refresh interval is 10 minutes).
	DefaultIdleConnTimeout = 15 * time.Minute
	// DefaultMaxBodyBytes caps a decompressed response body.
	DefaultMaxBodyBytes = 64 << 20
	// DefaultMaxPages bounds the pages one FetchTasks call requests, so a
	// remote that never stops sending full pages cannot keep it busy
	// forever; 10000 pages of 500 is 5 M tasks, far more than any node keeps.
	DefaultMaxPages = 10000
)

// Endpoint is one address of a remote (for a PVE cluster, one per node).
type Endpoint struct {
	URL         string // "https://host:port"; the port defaults to 8006 (PVE) or 8007 (PBS)
	Fingerprint string // optional SHA-256 pin of the leaf certificate, "AB:CD:..." (case-insensitive)
}

// Limiter is a connection budget shared by all remotes, e.g. a FIFO
// weighted semaphore. The client acquires one permit per request, after it
// got one of the remote's own slots, and releases it when the body is read.
type Limiter interface {
	Acquire(ctx context.Context) error
	Release()
}

// Config describes one remote. Zero fields take the Default* values.
// Printing a Config with any fmt verb never shows the token secret.
type Config struct {
	Remote      string    // remote id, used in every error message
	Kind        task.Kind // PVE or PBS
	TokenID     string    // "user@realm!tokenname"
	TokenSecret string    // never in an error or in the printed Config
	Endpoints   []Endpoint
	RootCAs     *x509.CertPool // nil: system roots; ignored for an endpoint with a Fingerprint

	MaxConns int // per-remote cap on concurrent requests, and on connections per endpoint
	PageSize int // tasks per list request in FetchTasks
	MaxPages int // pages per FetchTasks call before it gives up

	RequestTimeout        time.Duration // one HTTP exchange, body included
	DialTimeout           time.Duration // TCP connect
	TLSHandshakeTimeout   time.Duration // TLS handshake
	ResponseHeaderTimeout time.Duration // wait for the status line
	IdleConnTimeout       time.Duration // idle keep-alive connections are closed after this

	MaxBodyBytes int64 // cap on a decompressed body, enforced while reading

	// DialContext opens the TCP connection; nil uses a net.Dialer. Tests
	// pass an in-memory dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Limiter is the global budget; nil means no global cap.
	Limiter Limiter
	// ObserveRequest, when set, is called after every HTTP exchange with
	// its duration, body included (for a request-duration metric).
	ObserveRequest func(d time.Duration)
	// BeforeDecode, when set, is called in the requesting goroutine before
	// the body of a 2xx answer is decoded. It is a test knob: a panic in
	// it stands for a panic in a decoder, which the client does not
	// recover (its caller's goroutine does).
	BeforeDecode func(node string)
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConnsPVE
		if c.Kind == task.PBS {
			c.MaxConns = DefaultMaxConnsPBS
		}
	}
	setInt(&c.PageSize, DefaultPageSize)
	setInt(&c.MaxPages, DefaultMaxPages)
	setDuration(&c.RequestTimeout, DefaultRequestTimeout)
	setDuration(&c.DialTimeout, DefaultDialTimeout)
	setDuration(&c.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	setDuration(&c.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	setDuration(&c.IdleConnTimeout, DefaultIdleConnTimeout)
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return c
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

func setDuration(v *time.Duration, def time.Duration) {
	if *v == 0 {
		*v = def
	}
}

// validate checks a config that has its defaults applied. Its errors never
// contain the token secret.
func (c Config) validate() error {
	if err := task.ValidateRemoteID(c.Remote); err != nil {
		return err
	}
	if c.Kind != task.PVE && c.Kind != task.PBS {
		return fmt.Errorf("kind %v: want pve or pbs", c.Kind)
	}
	if err := validateToken(c.Kind, c.TokenID, c.TokenSecret); err != nil {
		return err
	}
	if len(c.Endpoints) == 0 {
		return errors.New("no endpoints")
	}
	for name, v := range map[string]int{"max conns": c.MaxConns, "page size": c.PageSize, "max pages": c.MaxPages} {
		if v < 1 {
			return fmt.Errorf("%s %d: want at least 1", name, v)
		}
	}
	for name, d := range map[string]time.Duration{
		"request timeout": c.RequestTimeout, "dial timeout": c.DialTimeout,
		"tls handshake timeout": c.TLSHandshakeTimeout, "response header timeout": c.ResponseHeaderTimeout,
		"idle conn timeout": c.IdleConnTimeout,
	} {
		if d < 0 {
			return fmt.Errorf("%s %v: must not be negative", name, d)
		}
	}
	if c.MaxBodyBytes < 1 {
		return fmt.Errorf("max body bytes %d: want at least 1", c.MaxBodyBytes)
	}
	return nil
}

// validateToken checks the token id and secret so that the header the server
// parses splits where we mean it to: PVE splits "id=secret" at the last '=',
// PBS splits "id:secret" at the first ':'. Errors name the token id only.
func validateToken(kind task.Kind, id, secret string) error {
	user, name, ok := strings.Cut(id, "!")
	if !ok || !strings.Contains(user, "@") || strings.HasPrefix(user, "@") || strings.HasSuffix(user, "@") || name == "" {
		return fmt.Errorf("token id %q: want user@realm!tokenname", id)
	}
	if strings.ContainsAny(id, ":=;, \t\r\n") || hasControl(id) {
		return fmt.Errorf("token id %q: contains a separator, space or control character", id)
	}
	if secret == "" {
		return errors.New("token secret is empty")
	}
	if hasControl(secret) || strings.ContainsAny(secret, " ;") {
		return errors.New("token secret contains a space, ';' or control character")
	}
	if kind == task.PVE && strings.Contains(secret, "=") {
		return errors.New("token secret contains '=' (PVE splits the token at the last '=')")
	}
	return nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// String renders the config with the secret redacted.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "proxmox.Config{Remote:%q Kind:%v TokenID:%q TokenSecret:%s Endpoints:[",
		c.Remote, c.Kind, c.TokenID, redacted(c.TokenSecret))
	for i, e := range c.Endpoints {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "{URL:%q Fingerprint:%q}", e.URL, e.Fingerprint)
	}
	fmt.Fprintf(&b, "] RootCAs:%s MaxConns:%d PageSize:%d MaxPages:%d", setOrNil(c.RootCAs != nil), c.MaxConns, c.PageSize, c.MaxPages)
	fmt.Fprintf(&b, " RequestTimeout:%v DialTimeout:%v TLSHandshakeTimeout:%v ResponseHeaderTimeout:%v IdleConnTimeout:%v",
		c.RequestTimeout, c.DialTimeout, c.TLSHandshakeTimeout, c.ResponseHeaderTimeout, c.IdleConnTimeout)
	fmt.Fprintf(&b, " MaxBodyBytes:%d DialContext:%s Limiter:%s}", c.MaxBodyBytes, setOrNil(c.DialContext != nil), setOrNil(c.Limiter != nil))
	return b.String()
}

// GoString is String: %#v must not print the secret either.
func (c Config) GoString() string { return c.String() }

// Format prints String for every verb (%v, %+v, %#v, %s, %d, %x...), so no
// verb walks the fields and prints the secret.
func (c Config) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}

func setOrNil(set bool) string {
	if set {
		return "set"
	}
	return "nil"
}

// endpoint is a validated Endpoint.
type endpoint struct {
	index int
	base  string // "https://host:port", host lower-case
	addr  string // "host:port" as the transport dials it
	host  string // host name or IP, for SNI and certificate verification
	pin   []byte // SHA-256 of the leaf certificate, or nil
	pinS  string // pin formatted AB:CD:...
}

// parseEndpoint validates e and canonicalises its URL.
func parseEndpoint(i int, e Endpoint, kind task.Kind) (*endpoint, error) {
	u, err := url.Parse(e.URL)
	if err != nil {
		return nil, fmt.Errorf("endpoint %d: %w", i, err)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("endpoint %d %q: scheme must be https", i, e.URL)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("endpoint %d %q: want only https://host[:port]", i, e.URL)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return nil, fmt.Errorf("endpoint %d %q: no host", i, e.URL)
	}
	port := u.Port()
	if port == "" {
		port = "8006"
		if kind == task.PBS {
			port = "8007"
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("endpoint %d %q: bad port", i, e.URL)
	}
	addr := net.JoinHostPort(host, port)
	ep := &endpoint{index: i, base: "https://" + addr, addr: addr, host: host}
	if e.Fingerprint != "" {
		sum, err := config.ParseFingerprintSum(e.Fingerprint)
		if err != nil {
			return nil, fmt.Errorf("endpoint %d %q: fingerprint: %w", i, e.URL, err)
		}
		ep.pin, ep.pinS = sum[:], config.FormatFingerprint(sum)
	}
	return ep, nil
}
