package config

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// The raw types mirror the file. Leaf values are decoded as `any` so that
// a value of the wrong type is one problem among others instead of ending
// the decoding; keys missing from these structs are unknown keys.
type (
	rawConfig struct {
		Server    rawServer   `toml:"server"`
		Polling   rawPolling  `toml:"polling"`
		Metrics   rawMetrics  `toml:"metrics"` // metrics.go
		Remotes   []rawRemote `toml:"remote"`
		APITokens []rawToken  `toml:"api_token"`
		Notify    []rawNotify `toml:"notify"` // see notify.go
	}
	rawServer struct {
		Listen       any `toml:"listen"`
		CacheDir     any `toml:"cache_dir"`
		StateDir     any `toml:"state_dir"`
		TLS          any `toml:"tls"`
		TLSCert      any `toml:"tls_cert"`
		TLSKey       any `toml:"tls_key"`
		InsecureHTTP any `toml:"insecure_http"`
	}
	rawPolling struct {
		Tick                    any `toml:"tick"`
		RefreshInterval         any `toml:"refresh_interval"`
		MaxConnections          any `toml:"max_connections"`
		MaxConnectionsPerRemote any `toml:"max_connections_per_remote"`
		RequestTimeout          any `toml:"request_timeout"`
		RetentionDays           any `toml:"retention_days"`
	}
	rawRemote struct {
		ID              any           `toml:"id"`
		Type            any           `toml:"type"`
		TokenID         any           `toml:"token_id"`
		TokenSecret     any           `toml:"token_secret"`
		TokenSecretFile any           `toml:"token_secret_file"`
		CAFile          any           `toml:"ca_file"`
		MaxConnections  any           `toml:"max_connections"`
		Endpoints       []rawEndpoint `toml:"endpoints"`
	}
	rawEndpoint struct {
		URL         any `toml:"url"`
		Fingerprint any `toml:"fingerprint"`
	}
	rawToken struct {
		ID         any `toml:"id"`
		Secret     any `toml:"secret"`
		SecretFile any `toml:"secret_file"`
		Remotes    any `toml:"remotes"`
	}
)

// builder converts the raw file into a Config: it checks value types,
// applies defaults, resolves paths and loads secrets. Everything else is
// validate's job.
type builder struct {
	ps      *problems
	baseDir string
}

func (b *builder) build(raw *rawConfig) *Config {
	cfg := Default()
	// Inline secrets are redacted from every problem, even invalid ones.
	for _, r := range raw.Remotes {
		if s, ok := r.TokenSecret.(string); ok {
			b.ps.addSecret(s)
		}
	}
	for _, t := range raw.APITokens {
		if s, ok := t.Secret.(string); ok {
			b.ps.addSecret(s)
		}
	}

	b.str(raw.Server.Listen, "server.listen", &cfg.Server.Listen)
	if b.str(raw.Server.CacheDir, "server.cache_dir", &cfg.Server.CacheDir) {
		cfg.Server.CacheDir = b.resolve(cfg.Server.CacheDir)
	}
	srv := &cfg.Server
	if b.str(raw.Server.StateDir, "server.state_dir", &srv.StateDir) {
		srv.StateDir = b.resolve(srv.StateDir)
	}
	b.str(raw.Server.TLS, "server.tls", &srv.TLS)
	if b.str(raw.Server.TLSCert, "server.tls_cert", &srv.TLSCert) {
		srv.TLSCert = b.resolve(srv.TLSCert)
	}
	if b.str(raw.Server.TLSKey, "server.tls_key", &srv.TLSKey) {
		srv.TLSKey = b.resolve(srv.TLSKey)
	}
	b.boolean(raw.Server.InsecureHTTP, "server.insecure_http", &srv.InsecureHTTP)
	p := &cfg.Polling
	b.duration(raw.Polling.Tick, "polling.tick", &p.Tick)
	b.duration(raw.Polling.RefreshInterval, "polling.refresh_interval", &p.RefreshInterval)
	b.integer(raw.Polling.MaxConnections, "polling.max_connections", &p.MaxConnections)
	b.integer(raw.Polling.MaxConnectionsPerRemote, "polling.max_connections_per_remote", &p.MaxConnectionsPerRemote)
	b.duration(raw.Polling.RequestTimeout, "polling.request_timeout", &p.RequestTimeout)
	b.integer(raw.Polling.RetentionDays, "polling.retention_days", &p.RetentionDays)
	b.metrics(&raw.Metrics, &cfg.Metrics)

	// Ids first: every later problem of a remote is reported under its id.
	b.ps.ids = make([]string, len(raw.Remotes))
	for i, r := range raw.Remotes {
		var id string
		if b.str(r.ID, fmt.Sprintf("remote[%d].id", i), &id) && task.ValidateRemoteID(id) == nil {
			b.ps.ids[i] = id
		}
	}
	cfg.Remotes = make([]Remote, len(raw.Remotes))
	for i := range raw.Remotes {
		cfg.Remotes[i] = b.remote(&raw.Remotes[i], fmt.Sprintf("remote[%d]", i), p)
	}
	cfg.APITokens = make([]APIToken, len(raw.APITokens))
	for i := range raw.APITokens {
		cfg.APITokens[i] = b.token(&raw.APITokens[i], fmt.Sprintf("api_token[%d]", i))
	}
	cfg.Notify = b.notifyTargets(raw.Notify, cfg.Remotes)
	return &cfg
}

func (b *builder) remote(raw *rawRemote, path string, p *Polling) Remote {
	var r Remote
	b.str(raw.ID, path+".id", &r.ID)
	var typ string
	if b.str(raw.Type, path+".type", &typ) {
		if k, err := task.ParseKind(typ); err == nil {
			r.Type = k
		} else {
			b.ps.add(path+".type", `want "pve" or "pbs"`)
		}
	}
	b.str(raw.TokenID, path+".token_id", &r.TokenID)
	r.TokenSecret, r.TokenSecretFile = b.secret(raw.TokenSecret, raw.TokenSecretFile, path, "token_secret")
	if b.str(raw.CAFile, path+".ca_file", &r.CAFile) && r.CAFile != "" {
		r.CAFile = b.resolve(r.CAFile)
	}
	if !b.integer(raw.MaxConnections, path+".max_connections", &r.MaxConnections) {
		r.MaxConnections = p.MaxConnectionsPerRemote
		if r.Type == task.PBS {
			r.MaxConnections = 1
		}
	}
	r.Endpoints = make([]Endpoint, len(raw.Endpoints))
	for j, e := range raw.Endpoints {
		ep := fmt.Sprintf("%s.endpoints[%d]", path, j)
		b.str(e.URL, ep+".url", &r.Endpoints[j].URL)
		b.str(e.Fingerprint, ep+".fingerprint", &r.Endpoints[j].Fingerprint)
	}
	return r
}

func (b *builder) token(raw *rawToken, path string) APIToken {
	var t APIToken
	b.str(raw.ID, path+".id", &t.ID)
	t.Secret, t.SecretFile = b.secret(raw.Secret, raw.SecretFile, path, "secret")
	t.Remotes = b.strings(raw.Remotes, path+".remotes")
	return t
}

// secret loads the secret given inline as key or in the file named by
// key+"_file"; exactly one of them must be set.
func (b *builder) secret(inline, file any, path, key string) (Secret, string) {
	var value, name string
	hasValue := b.str(inline, path+"."+key, &value)
	hasFile := b.str(file, path+"."+key+"_file", &name)
	switch {
	case hasValue && hasFile:
		b.ps.add(path+"."+key, "set either %s or %s_file, not both", key, key)
		return "", ""
	case !hasValue && !hasFile:
		if inline == nil && file == nil {
			b.ps.add(path+"."+key, "missing: set %s or %s_file", key, key)
		}
		return "", ""
	case hasFile:
		name = b.resolve(name)
		s, err := readSecretFile(name)
		if s != "" {
			b.ps.addSecret(s)
		}
		if err != nil {
			b.ps.add(path+"."+key+"_file", "%v", err)
			return "", name
		}
		return Secret(s), name
	}
	if err := checkSecret(value); err != nil {
		b.ps.add(path+"."+key, "%v", err)
		return "", ""
	}
	return Secret(value), ""
}

// resolve makes a relative path relative to the configuration's directory.
func (b *builder) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || b.baseDir == "" {
		return p
	}
	return filepath.Join(b.baseDir, p)
}

// str stores a string value; it reports whether the key was set to one.
func (b *builder) str(v any, path string, dst *string) bool {
	if v == nil {
		return false
	}
	s, ok := v.(string)
	if !ok {
		b.ps.add(path, "want a string, not %s", tomlType(v))
		return false
	}
	*dst = s
	return true
}

// integer stores an integer value; it reports whether the key was set to one.
func (b *builder) integer(v any, path string, dst *int) bool {
	if v == nil {
		return false
	}
	n, ok := v.(int64)
	if !ok {
		b.ps.add(path, "want an integer, not %s", tomlType(v))
		return false
	}
	if n != int64(int(n)) {
		b.ps.add(path, "out of range")
		return false
	}
	*dst = int(n)
	return true
}

// boolean stores a boolean value.
func (b *builder) boolean(v any, path string, dst *bool) {
	if v == nil {
		return
	}
	x, ok := v.(bool)
	if !ok {
		b.ps.add(path, "want true or false, not %s", tomlType(v))
		return
	}
	*dst = x
}

// duration stores a duration written as a string ("10s", "10m").
func (b *builder) duration(v any, path string, dst *time.Duration) {
	if v == nil {
		return
	}
	s, ok := v.(string)
	if !ok {
		b.ps.add(path, `want a duration string such as "10s", not %s`, tomlType(v))
		return
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		b.ps.add(path, `want a duration such as "10s", "10m" or "1h30m"`)
		return
	}
	*dst = d
}

// strings returns a list of strings; nil if the key is not set.
func (b *builder) strings(v any, path string) []string {
	if v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		b.ps.add(path, "want a list of strings, not %s", tomlType(v))
		return nil
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			b.ps.add(fmt.Sprintf("%s[%d]", path, i), "want a string, not %s", tomlType(e))
			continue
		}
		out = append(out, s)
	}
	return out
}

// tomlType names the TOML type of a decoded value.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return "a date-time"
}
