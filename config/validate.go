package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/taskfleet/taskfleet/task"
)

// Limits of the checks below.
const (
	minTick          = 1 // seconds; a tick is a scheduling step, not a busy loop
	maxRetentionDays = 3650
	minAPISecret     = 16 // bytes; shorter bearer tokens are guessable
	maxCAFile        = 1 << 20
)

// validate checks everything the builder did not: ranges, shapes,
// references and uniqueness. Messages never echo a value from the file,
// except remote ids.
func validate(c *Config, ps *problems) {
	validateServer(c, ps)
	validatePolling(&c.Polling, ps)
	firstID := map[string]int{}
	for i := range c.Remotes {
		path := fmt.Sprintf("remote[%d]", i)
		validateRemote(&c.Remotes[i], path, ps)
		id := c.Remotes[i].ID
		if j, dup := firstID[id]; dup && id != "" {
			ps.add(path+".id", "duplicate id: remote[%d] (line %d) has it too", j, ps.pos.line(fmt.Sprintf("remote[%d].id", j)))
		} else {
			firstID[id] = i
		}
	}
	validateTokens(c, ps)
}

func validateServer(c *Config, ps *problems) {
	host, port, err := net.SplitHostPort(c.Server.Listen)
	if err != nil {
		ps.add("server.listen", `want host:port, such as "127.0.0.1:8087"`)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		// Port 0: the kernel picks a free port, which serve logs.
		ps.add("server.listen", "want a port number from 1 to 65535, or 0 for any free port")
	} else if c.RequireLoopback() && !isLoopbackHost(host) {
		ps.add("server.listen", "not a loopback address: without an [[api_token]] every request is allowed, so taskfleet listens only on 127.0.0.1, ::1 or localhost")
	}
	if c.Server.CacheDir == "" {
		ps.add("server.cache_dir", "must not be empty")
	}
	validateTLS(&c.Server, ps)
}

// validateTLS checks the HTTPS settings of [server]: whether plain HTTP
// is allowed on the address the API binds is decided at start.
func validateTLS(s *Server, ps *problems) {
	switch s.TLS {
	case TLSAuto, TLSOn, TLSOff:
	default:
		ps.add("server.tls", `want "auto", "on" or "off"`)
	}
	switch {
	case s.TLSCert != "" && s.TLSKey == "":
		ps.add("server.tls_key", "missing: server.tls_cert is set, and a certificate needs its key")
	case s.TLSCert == "" && s.TLSKey != "":
		ps.add("server.tls_cert", "missing: server.tls_key is set, and a key needs its certificate")
	case s.TLSCert != "":
		if s.TLS == TLSOff {
			ps.add("server.tls", `"off" but server.tls_cert is set: remove one of them`)
		}
		if s.InsecureHTTP {
			ps.add("server.insecure_http", "true asks for plain HTTP, but server.tls_cert is set: remove one of them")
		}
		if _, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey); err != nil {
			ps.add("server.tls_cert", "cannot load the certificate and key: %s", tlsLoadError(err))
		}
	}
	if s.InsecureHTTP && s.TLS == TLSOn {
		ps.add("server.insecure_http", `true asks for plain HTTP, but server.tls is "on": remove one of them`)
	}
}

// tlsLoadError describes why a key pair did not load without echoing file
// contents: the error of tls.LoadX509KeyPair names the file or the PEM
// problem, never key material.
func tlsLoadError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s: %v", pe.Path, pe.Err)
	}
	return strings.TrimPrefix(err.Error(), "tls: ")
}

func validatePolling(p *Polling, ps *problems) {
	if p.Tick.Seconds() < minTick {
		ps.add("polling.tick", "want at least %ds", minTick)
	}
	if p.RefreshInterval <= 0 {
		ps.add("polling.refresh_interval", "want a positive duration")
	} else if p.Tick > p.RefreshInterval {
		ps.add("polling.refresh_interval", "shorter than polling.tick (%s)", p.Tick)
	}
	if p.RequestTimeout <= 0 {
		ps.add("polling.request_timeout", "want a positive duration")
	}
	if p.MaxConnections < 1 {
		ps.add("polling.max_connections", "want at least 1")
	}
	if p.MaxConnectionsPerRemote < 1 {
		ps.add("polling.max_connections_per_remote", "want at least 1")
	}
	if p.RetentionDays < 1 || p.RetentionDays > maxRetentionDays {
		ps.add("polling.retention_days", "want 1 to %d", maxRetentionDays)
	}
}

// tokenIDPattern is PVE's API token id: user@realm!tokenname, with user
// [^\s:/]+ (it may hold '@', as LDAP users do) and realm and token name
// [A-Za-z][A-Za-z0-9.\-_]+.
var tokenIDPattern = regexp.MustCompile(`^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$`)

func validateRemote(r *Remote, path string, ps *problems) {
	if r.ID == "" {
		ps.add(path+".id", "missing")
	} else if task.ValidateRemoteID(r.ID) != nil {
		ps.add(path+".id", "want letters, digits and '_', then also '.' and '-' (at most 128 characters)")
	}
	if r.Type != task.PVE && r.Type != task.PBS {
		ps.add(path+".type", `missing: want "pve" or "pbs"`)
	}
	if r.TokenID == "" {
		ps.add(path+".token_id", "missing")
	} else if !tokenIDPattern.MatchString(r.TokenID) {
		ps.add(path+".token_id", "want an API token id user@realm!tokenname")
	}
	if r.MaxConnections < 1 {
		ps.add(path+".max_connections", "want at least 1")
	}
	if r.CAFile != "" {
		if err := checkCAFile(r.CAFile); err != nil {
			ps.add(path+".ca_file", "%v", err)
		}
	}
	validateEndpoints(r, path, ps)
}

func validateEndpoints(r *Remote, path string, ps *problems) {
	switch {
	case len(r.Endpoints) == 0:
		ps.add(path+".endpoints", "want at least one endpoint")
	case r.Type == task.PBS && len(r.Endpoints) > 1:
		// A PBS is one server (its tasks all live on node "localhost"),
		// so more URLs could only be other addresses of the same host,
		// which would be polled as if they were separate nodes.
		ps.add(path+".endpoints", "a pbs remote is one server: want exactly one endpoint")
	}
	seen := map[string]int{}
	for j := range r.Endpoints {
		e := &r.Endpoints[j]
		ep := fmt.Sprintf("%s.endpoints[%d]", path, j)
		u, err := normalizeURL(e.URL, r.Type)
		if err != nil {
			ps.add(ep+".url", "%v", err)
		} else {
			e.URL = u
			if k, dup := seen[u]; dup {
				ps.add(ep+".url", "same address as endpoints[%d]", k)
			} else {
				seen[u] = j
			}
		}
		if e.Fingerprint != "" {
			fp, err := ParseFingerprint(e.Fingerprint)
			if err != nil {
				ps.add(ep+".fingerprint", "%v", err)
			} else {
				e.Fingerprint = fp
			}
		}
	}
}

// normalizeURL checks an endpoint URL and returns it as https://host:port.
// Errors do not echo the URL: it might carry credentials.
func normalizeURL(raw string, kind task.Kind) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("missing")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", fmt.Errorf("not a valid URL")
	case u.Scheme != "https":
		return "", fmt.Errorf(`want an "https://" URL`)
	case u.User != nil:
		return "", fmt.Errorf("must not contain credentials: use token_id and token_secret")
	case u.Hostname() == "":
		return "", fmt.Errorf("missing host")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return "", fmt.Errorf("want only scheme, host and port, without path, query or fragment")
	}
	port := u.Port()
	if port == "" {
		port = "8006"
		if kind == task.PBS {
			port = "8007"
		}
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("want a port number from 1 to 65535")
	}
	return "https://" + net.JoinHostPort(u.Hostname(), port), nil
}

// checkCAFile checks that a CA file is readable and holds a certificate.
func checkCAFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("read CA file: %w", err)
	}
	if fi.Size() > maxCAFile {
		return fmt.Errorf("CA file %s is larger than 1 MiB", path)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read CA file: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return nil
}

func validateTokens(c *Config, ps *problems) {
	firstID := map[string]int{}
	firstSecret := map[Secret]int{}
	for i := range c.APITokens {
		t := &c.APITokens[i]
		path := fmt.Sprintf("api_token[%d]", i)
		switch {
		case t.ID == "":
			ps.add(path+".id", "missing")
		case task.ValidateRemoteID(t.ID) != nil:
			ps.add(path+".id", "want letters, digits and '_', then also '.' and '-' (at most 128 characters)")
		default:
			if j, dup := firstID[t.ID]; dup {
				ps.add(path+".id", "duplicate id: api_token[%d] has it too", j)
			} else {
				firstID[t.ID] = i
			}
		}
		if t.Secret != "" {
			key := path + ".secret"
			if t.SecretFile != "" {
				key += "_file"
			}
			if len(t.Secret) < minAPISecret {
				ps.add(key, "secret is shorter than %d characters", minAPISecret)
			}
			if j, dup := firstSecret[t.Secret]; dup {
				ps.add(key, "same secret as api_token[%d]: each token needs its own", j)
			} else {
				firstSecret[t.Secret] = i
			}
		}
		validateTokenRemotes(c, t, path, ps)
	}
}

func validateTokenRemotes(c *Config, t *APIToken, path string, ps *problems) {
	if t.Remotes == nil {
		ps.add(path+".remotes", `missing: want ["*"] or a list of remote ids`)
		return
	}
	if len(t.Remotes) == 0 {
		ps.add(path+".remotes", `empty: want ["*"] or a list of remote ids`)
	}
	for k, id := range t.Remotes {
		if id == "*" {
			if len(t.Remotes) > 1 {
				ps.add(fmt.Sprintf("%s.remotes[%d]", path, k), `"*" (all remotes) must be alone`)
			}
			continue
		}
		if _, ok := c.Remote(id); !ok {
			ps.add(fmt.Sprintf("%s.remotes[%d]", path, k), "no remote has this id")
		}
	}
}
