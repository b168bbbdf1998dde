package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

const tasksAbout = `Query a running taskfleet daemon:

  tasks list     tasks, newest first, with filters
  tasks stats    counts of finished tasks by type and by remote
  tasks track    poll a task on every tick until it finishes (--wait: wait
                 for it and print its status; exit 1 if it failed)
  tasks untrack  stop polling a tracked task
  tasks refresh  fetch remotes now
  remotes        the health of each remote (taskfleet remotes)

Tables by default, --json for the answer's data as JSON (tasks list:
{"data": [...], "total": N}, the tasks and how many match). The token is
read from --token-file or the environment variable TASKFLEET_TOKEN, never
from the command line (which the process list shows). The URL is --url or
TASKFLEET_URL. An https:// daemon is verified with the system roots, or
pinned with --fingerprint (or TASKFLEET_FINGERPRINT): the SHA-256
fingerprint its self-signed certificate, which serve prints and logs at
start. A request the API refuses prints its message and exits 1.`

// defaultURL is the daemon's default address.
const defaultURL = "http://127.0.0.1:8087"

// maxAnswer bounds an answer's body (a list of every task of a large
// fleet is tens of megabytes).
const maxAnswer = 1 << 30

// runTasks is the tasks command.
func runTasks(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || isHelpFlag(args[0]) || args[0] == "help" {
		w := stderr
		if len(args) > 0 {
			w = stdout
		}
		fmt.Fprintf(w, "Usage: taskfleet tasks list|stats|track|untrack|refresh [flags]\n\n%s\n\nRun 'taskfleet tasks list -h' for a sub-command's flags.\n", tasksAbout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub, args := args[0], args[1:]
	var prepare func(fs *flag.FlagSet) func(ctx context.Context, c *client, out io.Writer) error
	switch sub {
	case "list":
		prepare = listFlags
	case "stats":
		prepare = statsFlags
	case "track":
		prepare = trackFlags
	case "refresh":
		prepare = refreshFlags
	case "untrack":
		prepare = untrackFlags
	case "remotes": // "taskfleet remotes"
		prepare = remotesFlags
	case "backups": // "taskfleet backups"
		prepare = backupsFlags
	default:
		fmt.Fprintf(stderr, "taskfleet tasks: unknown sub-command %q: want list, stats, track, untrack or refresh\n", sub)
		return exitUsage
	}
	name := "tasks " + sub
	if sub == "remotes" || sub == "backups" {
		name = sub
	}
	fs := newFlagSet(name, "[flags]", tasksAbout, stderr)
	var c client
	fs.StringVar(&c.base, "url", "", "the daemon's `URL` (default $TASKFLEET_URL or "+defaultURL+")")
	fs.StringVar(&c.tokenFile, "token-file", "", "read the API token's secret from this `file` (default $TASKFLEET_TOKEN)")
	// --token is refused after parsing, so that its value (a secret) is
	// never echoed in flag's "invalid value" message.
	tokenGiven := false
	fs.Func("token", "not accepted: the process list would show the secret; use --token-file or $TASKFLEET_TOKEN", func(string) error {
		tokenGiven = true
		return nil
	})
	fs.StringVar(&c.fingerprint, "fingerprint", "", "pin the daemon's certificate to this SHA-256 `fingerprint` (AA:BB:...; default $TASKFLEET_FINGERPRINT) instead of the system roots")
	fs.BoolVar(&c.json, "json", false, "print the answer as JSON: its data; for tasks list {\"data\": [...], \"total\": N}")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up on the request after this long")
	var lf logFlags
	lf.register(fs, "console")
	exec := prepare(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if tokenGiven {
		return usageError(fs, "--token is not accepted: the process list would show the secret; use --token-file or $TASKFLEET_TOKEN")
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected argument %q", fs.Arg(0))
	}
	if _, err := lf.logger(stderr); err != nil {
		return usageError(fs, "%v", err)
	}
	if err := c.fill(*timeout, stderr); err != nil {
		return usageError(fs, "%v", err)
	}
	if err := exec(ctx, &c, stdout); err != nil {
		var u usageErr
		if errors.As(err, &u) {
			return usageError(fs, "%v", err)
		}
		fmt.Fprintf(stderr, "taskfleet %s: %v\n", name, err)
		return exitFailure
	}
	return exitOK
}

// usageErr is a bad flag value found when the request is built.
type usageErr struct{ error }

// client is a client of a daemon's API.
type client struct {
	base        string // "http://127.0.0.1:8087", without a trailing "/"
	tokenFile   string // --token-file
	token       string // bearer secret; "" sends none
	fingerprint string // --fingerprint: pin of the daemon's certificate
	json        bool   // print data as JSON rather than as tables
	http        *http.Client
}

// fill applies the environment defaults after the flags are parsed, reads
// the token and prepares the HTTP client. Sending a token over plain HTTP
// to a host that is not loopback is warned about on warn.
func (c *client) fill(timeout time.Duration, warn io.Writer) error {
	if c.base == "" {
		c.base = os.Getenv("TASKFLEET_URL")
	}
	if c.base == "" {
		c.base = defaultURL
	}
	c.base = strings.TrimRight(c.base, "/")
	u, err := url.Parse(c.base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: want http://host:port or https://host:port", clipText(c.base, 200))
	}
	if c.tokenFile != "" {
		if c.token, err = readTokenFile(c.tokenFile); err != nil {
			return err
		}
	} else {
		c.token = strings.TrimSpace(os.Getenv("TASKFLEET_TOKEN"))
	}
	if c.fingerprint == "" {
		c.fingerprint = os.Getenv("TASKFLEET_FINGERPRINT")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	switch {
	case u.Scheme == "https":
		if tr.TLSClientConfig, err = clientTLS(c.fingerprint); err != nil {
			return err
		}
	case c.fingerprint != "":
		return errors.New("--fingerprint needs an https:// URL")
	case c.token != "" && !isLoopbackHost(u.Hostname()):
		fmt.Fprintf(warn, "taskfleet: warning: sending the API token over plain HTTP to %s\n", u.Host)
	}
	c.http = &http.Client{Timeout: timeout, Transport: tr}
	return nil
}

// readTokenFile reads a token's secret from its file: the first line,
// trimmed.
func readTokenFile(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", fmt.Errorf("--token-file %s: empty", path)
	}
	return line, nil
}

// answer is the JSON body of an API answer.
type answer struct {
	Data    json.RawMessage   `json:"data"`
	Total   *int              `json:"total"`
	Message string            `json:"message"`
	Errors  map[string]string `json:"errors"`
}

// refusal is an answer with a status other than 2xx: the API's message and
// the reason for each bad parameter.
type refusal struct {
	status  int
	message string
	params  map[string]string
}

// Error returns the status, the message and one line per bad parameter.
func (r *refusal) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s: %s", r.status, http.StatusText(r.status), r.message)
	for _, p := range slices.Sorted(maps.Keys(r.params)) {
		fmt.Fprintf(&b, "\n  %s: %s", p, r.params[p])
	}
	return b.String()
}

// call sends a request to path with params (in the query string for GET
// and DELETE, as a form for POST) and returns the answer, or a *refusal for a status
// other than 2xx.
func (c *client) call(ctx context.Context, method, path string, params url.Values) (*answer, error) {
	u := c.base + path
	var body io.Reader
	if method == http.MethodGet || method == http.MethodDelete {
		if len(params) > 0 {
			u += "?" + params.Encode()
		}
	} else {
		body = strings.NewReader(params.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("request: %w", certHint(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	var a answer
	jsonErr := json.Unmarshal(raw, &a)
	if resp.StatusCode/100 != 2 {
		r := &refusal{status: resp.StatusCode, message: a.Message, params: a.Errors}
		if jsonErr != nil || r.message == "" {
			r.message = strings.TrimSpace(clipText(string(raw), 200))
		}
		return nil, r
	}
	if jsonErr != nil {
		return nil, fmt.Errorf("decode answer: %w", jsonErr)
	}
	return &a, nil
}

// printJSON prints the answer's data, indented.
func printJSON(out io.Writer, data json.RawMessage) error {
	var b bytes.Buffer
	if err := json.Indent(&b, data, "", "  "); err != nil {
		return fmt.Errorf("format answer: %w", err)
	}
	b.WriteByte('\n')
	_, err := out.Write(b.Bytes())
	return err
}

// clipText shortens s to at most n bytes (on a rune boundary), marking the cut.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// utf8RuneStart reports whether b starts a UTF-8 sequence.
func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// parseWhen parses a --since or --until value: Unix seconds, a date
// ("2026-08-01", local time), a date and time ("2026-08-01 14:00" or
// RFC 3339), or a duration meaning that long before now ("24h", "90m").
func parseWhen(s string, now time.Time) (int64, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d).Unix(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.Unix(), nil
	}
	for _, layout := range []string{time.DateTime, "2006-01-02 15:04", "2006-01-02T15:04", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t.Unix(), nil
		}
	}
	return 0, fmt.Errorf("invalid time %q: want Unix seconds, 2006-01-02[ 15:04[:05]], RFC 3339 or a duration ago such as 24h", s)
}
