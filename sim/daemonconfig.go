package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/internal/atomicfile"
)

// DaemonOptions are the daemon settings WriteDaemonConfig writes; zero
// fields take the defaults shown.
type DaemonOptions struct {
	Listen          string        // "127.0.0.1:8087"
	CacheDir        string        // DIR/cache
	Tick            time.Duration // 10s
	RefreshInterval time.Duration // 10m
}

// ConfigFile is the name of the daemon configuration WriteConfig writes.
const ConfigFile = "taskfleet.toml"

// WriteConfig writes a taskfleet daemon configuration pointing at the
// fleet into dir, with the default DaemonOptions: DIR/taskfleet.toml and
// one secret file per remote, DIR/<remote>.secret (mode 0600). Call it
// after Start, when the endpoints' addresses are final. It returns the
// configuration's path.
func (f *Fleet) WriteConfig(dir string) (string, error) {
	return f.WriteDaemonConfig(dir, DaemonOptions{})
}

// WriteDaemonConfig is WriteConfig with daemon settings.
func (f *Fleet) WriteDaemonConfig(dir string, opts DaemonOptions) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:8087"
	}
	if opts.CacheDir == "" {
		opts.CacheDir = filepath.Join(dir, "cache")
	}
	if opts.Tick == 0 {
		opts.Tick = 10 * time.Second
	}
	if opts.RefreshInterval == 0 {
		opts.RefreshInterval = 10 * time.Minute
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# taskfleet configuration for a simulated fleet (taskfleet sim).\n")
	fmt.Fprintf(&b, "[server]\nlisten = %s\ncache_dir = %s\n\n", config.Quote(opts.Listen), config.Quote(opts.CacheDir))
	fmt.Fprintf(&b, "[polling]\ntick = %s\nrefresh_interval = %s\n", config.Quote(formatDuration(opts.Tick)), config.Quote(formatDuration(opts.RefreshInterval)))
	for _, r := range f.Remotes() {
		secretFile := filepath.Join(dir, r.ID+".secret")
		if err := os.WriteFile(secretFile, []byte(r.TokenSecret), 0o600); err != nil {
			return "", fmt.Errorf("write config: %w", err)
		}
		fmt.Fprintf(&b, "\n[[remote]]\nid = %s\ntype = %s\ntoken_id = %s\ntoken_secret_file = %s\nendpoints = [\n",
			config.Quote(r.ID), config.Quote(r.Kind.String()), config.Quote(r.TokenID), config.Quote(secretFile))
		for _, e := range r.Endpoints {
			fmt.Fprintf(&b, "  { url = %s, fingerprint = %s },\n", config.Quote(e.URL), config.Quote(e.Fingerprint))
		}
		b.WriteString("]\n")
	}
	path := filepath.Join(dir, ConfigFile)
	if err := atomicfile.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return path, nil
}

// formatDuration writes d in its largest exact unit: "10s", "10m", "2h";
// else Go's form.
func formatDuration(d time.Duration) string {
	for _, u := range []struct {
		d time.Duration
		s string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d >= u.d && d%u.d == 0 {
			return fmt.Sprintf("%d%s", d/u.d, u.s)
		}
	}
	return d.String()
}
