package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/task"
)

const checkConfigAbout = `Validate a configuration file as serve would load it (secret files and CA
files included), and check what serve will need: that server.listen can be
bound (or is held by a running taskfleet), and that server.cache_dir exists
or can be created and is writable. With --connect, each remote is asked,
through each of its endpoints, with the pinned certificate and the token:
one line per remote, "ok" or the error class (unreachable, timeout, auth,
cert_mismatch, ...), and a warning when the token cannot see every user's
tasks.

Every problem is printed, one a line with the file, the line, the remote
and the key, and the exit status is 1; a valid file prints "ok: N remotes"
and exits 0. Secrets are never printed.`

// runCheckConfig is the check-config command.
func runCheckConfig(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check-config", "[flags] FILE", checkConfigAbout, stderr)
	connect := fs.Bool("connect", false, "also connect to every endpoint of every remote with its pinned certificate and token")
	timeout := fs.Duration("timeout", 15*time.Second, "with --connect, give up on an endpoint after this long")
	var lf logFlags
	lf.register(fs, "json")
	if code, done := parseFlags(fs, reorderFlags(fs, args)); done {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(fs, "want one configuration file, got %d arguments", fs.NArg())
	}
	if _, err := lf.logger(stderr); err != nil {
		return usageError(fs, "%v", err)
	}
	path := fs.Arg(0)
	cfg, err := config.Load(path)
	var verr *config.ValidationError
	switch {
	case errors.As(err, &verr):
		for _, p := range verr.Problems {
			fmt.Fprintln(stdout, p.String())
		}
		return exitFailure
	case err != nil:
		fmt.Fprintf(stderr, "taskfleet check-config: %v\n", err)
		return exitFailure
	}
	var problems []config.Problem
	addr, p, ok := checkListenAddr(path, cfg)
	if !ok {
		problems = append(problems, p)
	}
	cacheErr := checkCacheDirWritable(cfg.Server.CacheDir)
	if addr != nil {
		// A certificate directory that is the cache directory is
		// reported once, below.
		if key, err := checkTLS(cfg.Server, addr, loopbackCheck(ctx)(addr)); err != nil && (key != "server.cache_dir" || cacheErr == nil) {
			problems = append(problems, at(path, key, err))
		}
	}
	if cacheErr != nil {
		problems = append(problems, at(path, "server.cache_dir", cacheErr))
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, p.String())
	}
	failed := len(problems) > 0
	if *connect {
		for i, r := range cfg.Remotes {
			if !checkRemote(context.Background(), stdout, path, i, r, *timeout) {
				failed = true
			}
		}
	}
	if failed {
		return exitFailure
	}
	fmt.Fprintf(stdout, "ok: %d remotes\n", len(cfg.Remotes))
	return exitOK
}

// reorderFlags moves the flags after the file name before it, so that
// "check-config FILE --connect" works as "check-config --connect FILE".
func reorderFlags(fs *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil {
			if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
				continue
			}
			if i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	return append(flags, rest...)
}

// at is the problem err at key of the configuration file path.
func at(path, key string, err error) config.Problem {
	p := config.Where(path, key)
	p.Message = err.Error()
	return p
}

// checkListenAddr checks that serve can listen on server.listen: the
// address is free, or held by a running taskfleet (which answers
// /livez). It returns the problem and false otherwise, and the address
// serve would have (nil when unknown), for checkTLS.
func checkListenAddr(path string, cfg *config.Config) (net.Addr, config.Problem, bool) {
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err == nil {
		defer ln.Close()
		if err := checkListen(cfg, ln.Addr()); err != nil {
			return nil, at(path, "server.listen", err), false
		}
		return ln.Addr(), config.Problem{}, true
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		if runningTaskfleet(cfg.Server.Listen) {
			addr, _ := net.ResolveTCPAddr("tcp", cfg.Server.Listen)
			if addr == nil {
				return nil, config.Problem{}, true
			}
			return addr, config.Problem{}, true
		}
		return nil, at(path, "server.listen", fmt.Errorf("%s is in use by another program (not a taskfleet answering /livez): serve could not listen: %w", cfg.Server.Listen, err)), false
	}
	return nil, at(path, "server.listen", fmt.Errorf("serve could not listen: %w", err)), false
}

// runningTaskfleet reports whether a taskfleet API answers at addr.
func runningTaskfleet(addr string) bool {
	// Only the liveness of a local process is asked, nothing is sent: its
	// certificate (if it serves HTTPS) need not be verified.
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	for _, scheme := range []string{"http", "https"} {
		resp, err := c.Get(scheme + "://" + addr + "/livez")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && string(body) == "ok\n" {
			return true
		}
	}
	return false
}

// checkCacheDirWritable checks, without creating anything, that the cache
// directory exists and is writable, or that its nearest existing parent
// lets it be created.
func checkCacheDirWritable(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	case err == nil:
		if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
			return fmt.Errorf("%s is not writable by this user (uid %d): %w", dir, os.Getuid(), err)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
		return err
	}
	for parent := filepath.Dir(dir); ; parent = filepath.Dir(parent) {
		fi, err := os.Stat(parent)
		switch {
		case err == nil && !fi.IsDir():
			return fmt.Errorf("%s cannot be created: %s is not a directory", dir, parent)
		case err == nil:
			if err := unix.Access(parent, unix.W_OK|unix.X_OK); err != nil {
				return fmt.Errorf("%s does not exist and cannot be created: %s is not writable by this user (uid %d): %w", dir, parent, os.Getuid(), err)
			}
			return nil
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR), filepath.Dir(parent) == parent:
			return fmt.Errorf("%s cannot be created: %w", dir, err)
		}
	}
}

// checkRemote connects to each endpoint of the remote with its pinned
// certificate (or its CA) and token, lists one task through it, and
// checks that the token sees every user's tasks. It prints one line for
// the remote, or one per failed endpoint, and reports whether all worked.
func checkRemote(ctx context.Context, out io.Writer, path string, i int, r config.Remote, timeout time.Duration) bool {
	var roots *x509.CertPool
	if r.CAFile != "" {
		pem, err := os.ReadFile(r.CAFile)
		if err != nil {
			fmt.Fprintln(out, at(path, fmt.Sprintf("remote[%d].ca_file", i), err))
			return false
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			// Load checked it; the file changed since.
			fmt.Fprintln(out, at(path, fmt.Sprintf("remote[%d].ca_file", i), fmt.Errorf("CA file %s holds no PEM certificate", r.CAFile)))
			return false
		}
	}
	ok := true
	for j, e := range r.Endpoints {
		if err := checkEndpoint(ctx, r, e, roots, timeout); err != nil {
			ok = false
			p := config.Where(path, fmt.Sprintf("remote[%d].endpoints[%d]", i, j))
			p.Message = fmt.Sprintf("%s: %s: %v", proxmox.ErrorKind(err), e.URL, err)
			fmt.Fprintln(out, p)
		}
	}
	if !ok {
		return false
	}
	audit := auditWarning(ctx, r, roots, timeout)
	fmt.Fprintf(out, "remote %q: ok: %d endpoints answer with the expected certificate, token %s accepted%s\n", r.ID, len(r.Endpoints), r.TokenID, audit)
	return true
}

// checkEndpoint lists one task through one endpoint with the client serve
// uses.
func checkEndpoint(ctx context.Context, r config.Remote, e config.Endpoint, roots *x509.CertPool, timeout time.Duration) error {
	c, err := proxmox.New(proxmox.Config{
		Remote: r.ID, Kind: r.Type, TokenID: r.TokenID, TokenSecret: r.TokenSecret.Reveal(),
		Endpoints:      []proxmox.Endpoint{{URL: e.URL, Fingerprint: e.Fingerprint}},
		RootCAs:        roots,
		MaxConns:       1,
		RequestTimeout: timeout,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err = c.ListTasks(ctx, "localhost", proxmox.ListQuery{Limit: 1})
	return err
}

// auditWarning returns "" when the token has the audit privilege, or a
// warning with the command that grants it.
func auditWarning(ctx context.Context, r config.Remote, roots *x509.CertPool, timeout time.Duration) string {
	e := r.Endpoints[0]
	p := newProbe(e.URL, e.Fingerprint, r.Type, r.TokenID, r.TokenSecret, timeout)
	p.roots = roots
	defer p.close()
	path := "/"
	if r.Type == task.PBS {
		path = "/system/tasks"
	}
	var perms permissions
	if _, err := p.get(ctx, "access/permissions?path="+path, &perms); err != nil {
		return fmt.Sprintf("; warning: privileges not checked (%v)", err)
	}
	if hasPrivilege(perms, path, "Sys.Audit") {
		return ""
	}
	return "; warning: the token lacks the audit privilege and sees only its own tasks; fix: " + fixCommand(r.Type, r.TokenID)
}

// fixCommand is the command that gives a token the audit privilege.
func fixCommand(k task.Kind, tokenID string) string {
	user, _, _ := strings.Cut(tokenID, "!")
	if k == task.PBS {
		return fmt.Sprintf("proxmox-backup-manager acl update / Audit --auth-id %s && proxmox-backup-manager acl update / Audit --auth-id '%s'", user, tokenID)
	}
	return fmt.Sprintf("pveum acl modify / --roles PVEAuditor --users %s --tokens '%s'", user, tokenID)
}
