package config

import (
	"net"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// Config is taskfleet's configuration.
type Config struct {
	Server    Server
	Polling   Polling
	Metrics   Metrics    // [metrics] (metrics.go)
	Remotes   []Remote   // [[remote]], in file order
	APITokens []APIToken // [[api_token]], in file order
	Notify    []Notify   // [[notify]], in file order (notify.go)
}

// Server is the [server] table.
type Server struct {
	// Listen is the host:port the HTTP API listens on. Without any API
	// token it must be a loopback address.
	Listen string
	// CacheDir is the directory of the task cache; a relative path is
	// relative to the configuration file's directory.
	CacheDir string
	// StateDir keeps the generated self-signed certificate of the API
	// (resolved like CacheDir); "" means CacheDir.
	StateDir string
	// TLS is when the API speaks HTTPS: TLSAuto (HTTPS unless the API
	// listens on loopback), TLSOn (always) or TLSOff (plain HTTP, which
	// needs loopback or InsecureHTTP).
	TLS string
	// TLSCert and TLSKey are the resolved paths of the API's PEM
	// certificate (chain) and private key, both or neither; re-read on
	// SIGHUP. Without them an HTTPS API uses a self-signed certificate
	// generated in the state directory.
	TLSCert, TLSKey string
	// InsecureHTTP allows plain HTTP on an address that is not loopback
	// (bearer tokens then cross the network in clear).
	InsecureHTTP bool
}

// Values of Server.TLS.
const (
	TLSAuto = "auto"
	TLSOn   = "on"
	TLSOff  = "off"
)

// CertDir returns the directory of the generated certificate: StateDir,
// or CacheDir when it is not set.
func (s Server) CertDir() string {
	if s.StateDir != "" {
		return s.StateDir
	}
	return s.CacheDir
}

// Polling is the [polling] table.
type Polling struct {
	// Tick is the scheduling step: tracked tasks are polled every tick and
	// every scheduled action happens on a tick.
	Tick time.Duration
	// RefreshInterval is how often each remote's task lists are fetched
	// in full (incrementally from the cutoffs).
	RefreshInterval time.Duration
	// MaxConnections caps concurrent requests to all remotes together.
	MaxConnections int
	// MaxConnectionsPerRemote is the default per-remote cap for PVE
	// remotes (PBS remotes default to 1).
	MaxConnectionsPerRemote int
	// RequestTimeout bounds every request to a remote.
	RequestTimeout time.Duration
	// RetentionDays is how many days of task history the cache keeps.
	RetentionDays int
}

// Remote is one [[remote]]: a PVE cluster or a PBS.
type Remote struct {
	ID              string    // safe id, unique
	Type            task.Kind // task.PVE or task.PBS
	TokenID         string    // user@realm!name
	TokenSecret     Secret    // from token_secret or token_secret_file
	TokenSecretFile string    // resolved path, "" when inline
	CAFile          string    // resolved path of PEM CA certificates, "" for system roots
	// MaxConnections is the remote's cap on concurrent requests; after
	// Load it holds the effective value (the per-remote default when the
	// file does not set it).
	MaxConnections int
	Endpoints      []Endpoint // at least one; exactly one for PBS
}

// Endpoint is one address of a remote: a PVE cluster node or the PBS.
type Endpoint struct {
	// URL is "https://host:port", normalized: the default port (8006 for
	// PVE, 8007 for PBS) is added when missing and a trailing "/" removed.
	URL string
	// Fingerprint is the SHA-256 fingerprint of the endpoint's
	// certificate as 32 upper-case hex bytes separated by colons, or "".
	Fingerprint string
}

// APIToken is one [[api_token]]: a bearer token for taskfleet's HTTP API.
type APIToken struct {
	ID         string // safe id, unique; shown in logs
	Secret     Secret // from secret or secret_file
	SecretFile string // resolved path, "" when inline
	// Remotes are the remote ids the token may see, or ["*"] for all.
	Remotes []string
}

// AllRemotes reports whether the token may see every remote (remotes = ["*"]).
func (t APIToken) AllRemotes() bool { return len(t.Remotes) == 1 && t.Remotes[0] == "*" }

// Default returns the configuration with every default and no remotes.
func Default() Config {
	return Config{
		Server: Server{
			Listen:   "127.0.0.1:8087",
			CacheDir: "/var/cache/taskfleet",
			TLS:      TLSAuto,
		},
		Polling: Polling{
			Tick:                    10 * time.Second,
			RefreshInterval:         10 * time.Minute,
			MaxConnections:          20,
			MaxConnectionsPerRemote: 5,
			RequestTimeout:          30 * time.Second,
			RetentionDays:           7,
		},
		Metrics: defaultMetrics(),
	}
}

// RequireLoopback reports whether the API must listen on loopback only,
// which is the case when no API token is configured (every request would
// be allowed).
func (c *Config) RequireLoopback() bool { return len(c.APITokens) == 0 }

// Remote returns the remote with the given id.
func (c *Config) Remote(id string) (Remote, bool) {
	for _, r := range c.Remotes {
		if r.ID == id {
			return r, true
		}
	}
	return Remote{}, false
}

// isLoopbackHost reports whether host is "localhost" or a loopback IP.
// Other host names are not resolved and count as not loopback.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
