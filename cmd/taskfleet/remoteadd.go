package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/task"
)

const remoteAddAbout = `Add a Proxmox VE cluster or a Proxmox Backup Server to the configuration,
as Proxmox Datacenter Manager's "add remote" wizard does:

 1. connect to URL and show its certificate: SHA-256 fingerprint, subject,
    issuer and validity. Trust on first use: confirm it on the terminal, or
    pass --fingerprint (checked on the node with "pvenode cert info" or
    "proxmox-backup-manager cert info") to confirm it non-interactively;
    a certificate with another fingerprint is refused.
 2. with the token, detect PVE or PBS and, for a PVE cluster, discover its
    nodes with their own endpoints and fingerprints (each node is
    contacted and its certificate compared with what the cluster reports).
 3. check that the token can list every user's tasks (PVE: Sys.Audit on /;
    PBS: Audit on /); without it a warning shows the command that fixes it.
 4. append a [[remote]] block to the configuration file (created if
    missing), keeping its comments, after checking that the result is
    valid; --dry-run prints the block instead.

Without --token-id it only shows the certificate and the product.`

// remoteAddFlags are the flags of remote add.
type remoteAddFlags struct {
	config, id, typ, tokenID, secretFile, fingerprint string
	dryRun                                            bool
	timeout                                           time.Duration
}

// runRemoteAdd is the remote add command.
func runRemoteAdd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("remote add", "[flags] URL", remoteAddAbout, stderr)
	var f remoteAddFlags
	fs.StringVar(&f.config, "config", "taskfleet.toml", "configuration `file` to append to (created if missing)")
	fs.StringVar(&f.id, "id", "", "remote `id` (default: the PVE cluster's name, or the host name)")
	fs.StringVar(&f.typ, "type", "", "pve or pbs (default: detected)")
	fs.StringVar(&f.tokenID, "token-id", "", "API token `id` user@realm!name (taskfleet@pve!poll)")
	fs.StringVar(&f.secretFile, "token-secret-file", "", "`file` holding the token's secret")
	fs.StringVar(&f.fingerprint, "fingerprint", "", "the certificate's expected SHA-256 `fingerprint` (any form: AB:CD:…, lower case, no colons, openssl's)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the [[remote]] block instead of adding it")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up on a request after this long")
	if code, done := parseFlags(fs, reorderFlags(fs, args)); done {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(fs, "want one URL (https://HOST:8006 or https://HOST:8007), got %d arguments", fs.NArg())
	}
	a := &remoteAdd{flags: f, out: stdout, warn: stderr}
	if err := a.prepare(fs.Arg(0)); err != nil {
		return usageError(fs, "%v", err)
	}
	code, err := a.run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "taskfleet remote add: %v\n", err)
	}
	return code
}

// remoteAdd is one run of remote add.
type remoteAdd struct {
	flags  remoteAddFlags
	out    io.Writer // what is found, the block
	warn   io.Writer // warnings
	kind   task.Kind // task.PVE or task.PBS; 0 until known
	url    string    // normalized, https://host:port
	pin    string    // the confirmed fingerprint
	cn     string    // the certificate's common name (PBS: its host name)
	secret config.Secret
	warned int
}

// warnf prints a warning.
func (a *remoteAdd) warnf(format string, args ...any) {
	a.warned++
	fmt.Fprintf(a.warn, "warning: "+format+"\n", args...)
}

// prepare checks the flags and the URL.
func (a *remoteAdd) prepare(raw string) error {
	f := &a.flags
	if f.typ != "" {
		k, err := task.ParseKind(f.typ)
		if err != nil {
			return fmt.Errorf("--type: want pve or pbs")
		}
		a.kind = k
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	kind := a.kind
	if kind == 0 {
		kind = task.PVE // default port 8006, as PVE
	}
	u, err := config.NormalizeURL(raw, kind)
	if err != nil {
		return fmt.Errorf("URL: %v", err)
	}
	a.url = u
	if f.fingerprint != "" {
		fp, err := config.ParseFingerprint(f.fingerprint)
		if err != nil {
			return fmt.Errorf("--fingerprint: %v", err)
		}
		f.fingerprint = fp
	}
	if (f.tokenID == "") != (f.secretFile == "") {
		return fmt.Errorf("give both --token-id and --token-secret-file, or neither (to only look at the certificate)")
	}
	if f.id != "" {
		if err := task.ValidateRemoteID(f.id); err != nil {
			return fmt.Errorf("--id: %v", err)
		}
	}
	if f.secretFile != "" {
		abs, err := filepath.Abs(f.secretFile)
		if err != nil {
			return fmt.Errorf("--token-secret-file: %v", err)
		}
		f.secretFile = abs
		if a.secret, err = config.ReadSecretFile(abs); err != nil {
			return fmt.Errorf("--token-secret-file: %v", err)
		}
	}
	return nil
}

// found is what remote add learned about the remote.
type found struct {
	version   string
	cluster   string // PVE cluster name; "" for a single node or a PBS
	localNode string
	endpoints []foundEndpoint
	audit     bool // the token can list every user's tasks
}

// foundEndpoint is one endpoint of the block.
type foundEndpoint struct {
	node, url, fingerprint string
}

// run does the work and returns the exit code.
func (a *remoteAdd) run(ctx context.Context) (int, error) {
	if err := a.trust(ctx); err != nil {
		return exitFailure, err
	}
	if a.flags.tokenID == "" {
		return a.lookOnly(ctx)
	}
	p, ver, err := a.detect(ctx)
	if err != nil {
		return exitFailure, err
	}
	defer p.close()
	fd := &found{version: ver}
	fd.audit = a.checkAudit(ctx, p)
	if err := a.discover(ctx, p, fd); err != nil {
		return exitFailure, err
	}
	id, err := a.remoteID(ctx, p, fd)
	if err != nil {
		return exitFailure, err
	}
	return a.write(id, fd)
}

// trust shows the certificate and has its fingerprint confirmed.
func (a *remoteAdd) trust(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, a.flags.timeout)
	defer cancel()
	cert, err := peekCertificate(cctx, a.url)
	if err != nil {
		return err
	}
	fp := certFingerprint(cert)
	a.cn = cert.Subject.CommonName
	fmt.Fprintf(a.out, "%s presents this certificate:\n", a.url)
	printCertificate(a.out, cert, time.Now())
	switch {
	case a.flags.tokenID == "" && a.flags.fingerprint == "":
		// Only looking: nothing is sent that needs trust.
	case a.flags.fingerprint == fp:
		fmt.Fprintf(a.out, "The fingerprint is the one given with --fingerprint.\n")
	case a.flags.fingerprint != "":
		return fmt.Errorf("refused: %s presents a certificate with fingerprint %s, not the %s given with --fingerprint; check the address and the node's certificate (pvenode cert info, proxmox-backup-manager cert info)", a.url, fp, a.flags.fingerprint)
	case confirm(a.out, "Trust this certificate?"):
	default:
		return fmt.Errorf("certificate not confirmed: check the fingerprint on the node (pvenode cert info, or proxmox-backup-manager cert info) and run again with --fingerprint %s", fp)
	}
	a.pin = fp
	return nil
}

// printCertificate shows what an admin checks before trusting a certificate.
func printCertificate(w io.Writer, c *x509.Certificate, now time.Time) {
	issuer := c.Issuer.String()
	if issuer == c.Subject.String() {
		issuer += " (self-signed)"
	}
	validity := "valid now"
	switch {
	case now.Before(c.NotBefore):
		validity = "NOT YET VALID"
	case now.After(c.NotAfter):
		validity = "EXPIRED"
	}
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	fmt.Fprintf(w, "  subject      %s\n  issuer       %s\n  valid        %s to %s (%s)\n",
		c.Subject, issuer, c.NotBefore.UTC().Format(time.DateOnly), c.NotAfter.UTC().Format(time.DateOnly), validity)
	if len(names) > 0 {
		fmt.Fprintf(w, "  names        %s\n", strings.Join(names, ", "))
	}
	fmt.Fprintf(w, "  fingerprint  %s (SHA-256)\n", certFingerprint(c))
}

// lookOnly tells the product without a token and how to go on.
func (a *remoteAdd) lookOnly(ctx context.Context) (int, error) {
	p := newProbe(a.url, a.pin, task.PVE, "", "", a.flags.timeout)
	defer p.close()
	server, err := p.get(ctx, "version", nil)
	kind := a.kind
	if kind == 0 {
		kind = task.PBS
		if strings.HasPrefix(server, "pve-api-daemon") || err == nil {
			kind = task.PVE
		}
	}
	fmt.Fprintf(a.out, "\nThis looks like a %s. To add it, create a read-only API token there:\n\n", productName(kind))
	printTokenHowTo(a.out, kind)
	fmt.Fprintf(a.out, "\nthen run again with --token-id and --token-secret-file, and --fingerprint %s.\n", a.pin)
	return exitOK, nil
}

// productName names the product of kind.
func productName(k task.Kind) string {
	if k == task.PBS {
		return "Proxmox Backup Server"
	}
	return "Proxmox VE node"
}

// printTokenHowTo prints the commands that create the token taskfleet needs.
func printTokenHowTo(w io.Writer, k task.Kind) {
	if k == task.PBS {
		fmt.Fprint(w, `  proxmox-backup-manager user create taskfleet@pbs --comment "taskfleet (read-only)"
  proxmox-backup-manager user generate-token taskfleet@pbs poll   # prints the secret once
  proxmox-backup-manager acl update / Audit --auth-id taskfleet@pbs
  proxmox-backup-manager acl update / Audit --auth-id 'taskfleet@pbs!poll'
`)
		return
	}
	fmt.Fprint(w, `  pveum user add taskfleet@pve --comment "taskfleet (read-only)"
  pveum user token add taskfleet@pve poll --privsep 0   # prints the secret once
  pveum acl modify / --users taskfleet@pve --roles PVEAuditor
`)
}

// detect finds out whether the remote is PVE or PBS: the one whose token
// header the remote accepts. It returns a probe for the remote.
func (a *remoteAdd) detect(ctx context.Context) (*probe, string, error) {
	kinds := []task.Kind{task.PVE, task.PBS}
	switch {
	case a.kind != 0:
		kinds = []task.Kind{a.kind}
	case strings.HasSuffix(a.url, ":8007"):
		kinds = []task.Kind{task.PBS, task.PVE}
	}
	var errs []string
	for _, k := range kinds {
		p := newProbe(a.url, a.pin, k, a.flags.tokenID, a.secret, a.flags.timeout)
		var v versionAnswer
		_, err := p.get(ctx, "version", &v)
		if err == nil {
			a.kind = k
			fmt.Fprintf(a.out, "\n%s %s at %s; token %s accepted.\n", productName(k), v.Version, a.url, a.flags.tokenID)
			return p, v.Version, nil
		}
		p.close()
		if statusOf(err) == 0 {
			return nil, "", err // the connection failed: asking again will not help
		}
		errs = append(errs, fmt.Sprintf("as %s: %v", k, err))
	}
	return nil, "", fmt.Errorf("token %s not accepted (%s): check the token id, the secret file and, with --type, the product", a.flags.tokenID, strings.Join(errs, "; "))
}

// checkAudit checks that the token may list every user's tasks and warns
// with the command that fixes it.
func (a *remoteAdd) checkAudit(ctx context.Context, p *probe) bool {
	path := "/"
	if a.kind == task.PBS {
		path = "/system/tasks" // where PBS checks Sys.Audit for the task list
	}
	var perms permissions
	if _, err := p.get(ctx, "access/permissions?path="+url.QueryEscape(path), &perms); err != nil {
		a.warnf("could not read the token's privileges (%v): make sure it can see every user's tasks", err)
		a.printFix()
		return false
	}
	if hasPrivilege(perms, path, "Sys.Audit") {
		fmt.Fprintf(a.out, "The token has Sys.Audit on %s: it sees every user's tasks.\n", path)
		return true
	}
	if a.kind == task.PBS {
		a.warnf("token %s lacks the Audit role on / (Sys.Audit on /system/tasks): it sees only its own tasks, not the backups, syncs and jobs of others", a.flags.tokenID)
	} else {
		a.warnf("token %s lacks Sys.Audit on / (role PVEAuditor): it sees only its own tasks, not the backups, migrations and guest starts of others, and the cluster's nodes cannot be discovered", a.flags.tokenID)
	}
	a.printFix()
	return false
}

// printFix prints the command that gives the token the audit privilege.
func (a *remoteAdd) printFix() {
	where := "any node of the cluster (for the user, and for the token if it is privilege-separated)"
	if a.kind == task.PBS {
		where = "the Proxmox Backup Server (PBS tokens get what both the user and the token are granted)"
	}
	fmt.Fprintf(a.warn, "Fix it on %s:\n  %s\n", where, strings.ReplaceAll(fixCommand(a.kind, a.flags.tokenID), " && ", "\n  "))
}

// discover finds the endpoints: the given one, and for a PVE cluster
// every other node at its cluster address, each with its fingerprint.
func (a *remoteAdd) discover(ctx context.Context, p *probe, fd *found) error {
	if a.kind == task.PBS {
		fd.endpoints = []foundEndpoint{{url: a.url, fingerprint: a.pin}}
		return nil
	}
	var nodes []nodeEntry
	if _, err := p.get(ctx, "nodes", &nodes); err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	var members []clusterMember
	if _, err := p.get(ctx, "cluster/status", &members); err != nil {
		fd.endpoints = []foundEndpoint{{url: a.url, fingerprint: a.pin}}
		if len(nodes) > 1 {
			names := make([]string, 0, len(nodes))
			for _, n := range nodes {
				names = append(names, n.Node)
			}
			a.warnf("cannot discover the addresses of the cluster's nodes (%s): %v. Only %s is added; fix the privilege and run remote remove and remote add again, or add the other nodes' URLs by hand", strings.Join(names, ", "), err, a.url)
		}
		if len(nodes) == 1 {
			fd.localNode = nodes[0].Node
		}
		return nil
	}
	fps := map[string]nodeEntry{}
	for _, n := range nodes {
		fps[n.Node] = n
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(a.url, "https://"))
	fmt.Fprintln(a.out)
	for _, m := range members {
		switch {
		case m.Type == "cluster":
			fd.cluster = m.Name
			continue
		case m.Type != "node":
			continue
		}
		if m.Local {
			fd.localNode = m.Name
			if reported := fps[m.Name].SSLFingerprint; reported != "" && !sameFingerprint(reported, a.pin) {
				return fmt.Errorf("node %s reports certificate fingerprint %s but %s presented %s: a proxy or another host answers at this address", m.Name, reported, a.url, a.pin)
			}
			fd.endpoints = append([]foundEndpoint{{node: m.Name, url: a.url, fingerprint: a.pin}}, fd.endpoints...)
			fmt.Fprintf(a.out, "  node %-20s %s  %s (this endpoint)\n", m.Name, a.url, a.pin)
			continue
		}
		ep, err := a.nodeEndpoint(ctx, m, port, fps[m.Name])
		if err != nil {
			a.warnf("node %s: %v", m.Name, err)
		}
		if ep.url != "" {
			fd.endpoints = append(fd.endpoints, ep)
			fmt.Fprintf(a.out, "  node %-20s %s  %s\n", m.Name, ep.url, ep.fingerprint)
		}
	}
	if len(fd.endpoints) == 0 || fd.endpoints[0].url != a.url {
		// The cluster did not say which node answers here: keep the URL.
		fd.endpoints = append([]foundEndpoint{{url: a.url, fingerprint: a.pin}}, fd.endpoints...)
	}
	return nil
}

// nodeEndpoint returns the endpoint of another cluster node: its cluster
// address on the port of the given URL, with the fingerprint the cluster
// reports, checked against the certificate the node presents. A node
// that cannot be reached is kept (with a warning) when the cluster
// reports its fingerprint.
func (a *remoteAdd) nodeEndpoint(ctx context.Context, m clusterMember, port string, n nodeEntry) (foundEndpoint, error) {
	if m.IP == "" {
		return foundEndpoint{}, errors.New("the cluster reports no address: add its URL by hand")
	}
	ep := foundEndpoint{node: m.Name, url: "https://" + net.JoinHostPort(m.IP, port)}
	reported := ""
	if n.SSLFingerprint != "" {
		fp, err := config.ParseFingerprint(n.SSLFingerprint)
		if err != nil {
			return foundEndpoint{}, fmt.Errorf("the cluster reports a fingerprint that is not one: %v", err)
		}
		reported = fp
	}
	cctx, cancel := context.WithTimeout(ctx, a.flags.timeout)
	defer cancel()
	cert, err := peekCertificate(cctx, ep.url)
	switch {
	case err != nil && reported == "":
		return foundEndpoint{}, fmt.Errorf("not added: %v, and the cluster reports no fingerprint for it", err)
	case err != nil:
		ep.fingerprint = reported
		return ep, fmt.Errorf("added with the fingerprint the cluster reports, but %v", err)
	}
	seen := certFingerprint(cert)
	switch {
	case reported == "":
		ep.fingerprint = seen
		return ep, fmt.Errorf("the cluster reports no fingerprint (node %s): pinned the certificate it presents, %s", nodeStatus(n), seen)
	case seen != reported:
		return foundEndpoint{}, fmt.Errorf("not added: %s presents fingerprint %s but the cluster reports %s for the node", ep.url, seen, reported)
	}
	ep.fingerprint = reported
	return ep, nil
}

// nodeStatus is a node's status as /nodes reports it.
func nodeStatus(n nodeEntry) string {
	if n.Status == "" {
		return "status unknown"
	}
	return n.Status
}

// sameFingerprint compares fingerprints in any form.
func sameFingerprint(a, b string) bool {
	x, err1 := config.ParseFingerprint(a)
	y, err2 := config.ParseFingerprint(b)
	return err1 == nil && err2 == nil && x == y
}

// remoteID returns --id, or one derived from the cluster or host name.
func (a *remoteAdd) remoteID(_ context.Context, _ *probe, fd *found) (string, error) {
	if a.flags.id != "" {
		return a.flags.id, nil
	}
	var candidates []string
	if fd.cluster != "" {
		candidates = append(candidates, fd.cluster)
	}
	if fd.localNode != "" && fd.cluster == "" {
		candidates = append(candidates, fd.localNode)
	}
	if a.cn != "" {
		candidates = append(candidates, strings.Split(a.cn, ".")[0])
	}
	host := strings.TrimPrefix(a.url, "https://")
	host, _, _ = net.SplitHostPort(host)
	if net.ParseIP(host) == nil {
		candidates = append(candidates, strings.Split(host, ".")[0])
	}
	for _, c := range candidates {
		if task.ValidateRemoteID(c) == nil {
			return c, nil
		}
	}
	return "", errors.New("no remote id could be derived from the cluster or host name: give one with --id")
}

// write appends the block to the configuration, or prints it.
func (a *remoteAdd) write(id string, fd *found) (int, error) {
	path := a.flags.config
	var data []byte
	if fileExists(path) {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return exitFailure, err
		}
		blocks, err := config.RemoteBlocks(data)
		if err != nil {
			return exitFailure, fmt.Errorf("%s: %v", path, err)
		}
		for _, b := range blocks {
			if b.ID == id {
				return exitFailure, fmt.Errorf("%s:%d: a remote %q exists already: choose another --id, or remove it first (taskfleet remote remove --config %s %s)", path, b.Start, id, path, id)
			}
		}
	}
	block := a.block(id, fd)
	out := config.AppendRemote(data, block)
	first := strings.Count(string(out), "\n") - strings.Count(block, "\n") + 1
	if problems := newProblems(path, data, out, first); len(problems) > 0 {
		fmt.Fprintf(a.warn, "The block would make %s invalid:\n", path)
		for _, p := range problems {
			fmt.Fprintf(a.warn, "  %s\n", p)
		}
		fmt.Fprintf(a.warn, "\n%s", block)
		return exitFailure, fmt.Errorf("%s not changed", path)
	}
	if a.flags.dryRun {
		fmt.Fprintf(a.out, "\n--dry-run: the block that would be appended to %s:\n\n%s", path, block)
		return exitOK, nil
	}
	if err := config.WriteFile(path, out, 0o640); err != nil {
		return exitFailure, err
	}
	last := first + strings.Count(block, "\n") - 1
	fmt.Fprintf(a.out, "\nAdded remote %q (%d endpoints) to %s, lines %d-%d.\nCheck it with:  taskfleet check-config --connect %s\nA running daemon picks it up on reload (SIGHUP).\n", id, len(fd.endpoints), path, first, last, path)
	return exitOK, nil
}

// block returns the [[remote]] table for the remote.
func (a *remoteAdd) block(id string, fd *found) string {
	var b strings.Builder
	what := productName(a.kind) + " " + fd.version
	if fd.cluster != "" {
		what = fmt.Sprintf("Proxmox VE %s cluster %q", fd.version, fd.cluster)
	}
	fmt.Fprintf(&b, "# %s, added by taskfleet remote add on %s.\n", what, time.Now().UTC().Format(time.DateOnly))
	if !fd.audit {
		b.WriteString("# The token lacks the audit privilege: it sees only its own tasks (see taskfleet remote add's warning).\n")
	}
	fmt.Fprintf(&b, "[[remote]]\nid = %s\ntype = %s\ntoken_id = %s\ntoken_secret_file = %s\nendpoints = [\n",
		config.Quote(id), config.Quote(a.kind.String()), config.Quote(a.flags.tokenID), config.Quote(a.flags.secretFile))
	for _, e := range fd.endpoints {
		fmt.Fprintf(&b, "  { url = %s, fingerprint = %s },", config.Quote(e.url), config.Quote(e.fingerprint))
		if e.node != "" {
			fmt.Fprintf(&b, " # node %s", e.node)
		}
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	return b.String()
}
