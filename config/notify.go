package config

import (
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/taskfleet/taskfleet/notify/tmpl"
	"github.com/taskfleet/taskfleet/task"
)

// Kinds of [[notify]] targets.
const (
	NotifyWebhook = "webhook"
	NotifyEmail   = "email"
)

// Defaults and limits of [[notify]].
const (
	DefaultNotifyWindow  = 30 * time.Second
	DefaultNotifyQueue   = 1000
	DefaultNotifyTimeout = 30 * time.Second
	maxNotifyQueue       = 100000
	maxNotifyWindow      = time.Hour
	maxStaleHours        = 24 * 365
)

// Notify is one [[notify]] target: where alerts go and which ones.
type Notify struct {
	Name string // safe id, unique; names the delivery state file and shows in logs
	Kind string // NotifyWebhook or NotifyEmail

	// Webhook.
	URL     Secret   // from url or url_file: it may hold a token
	URLFile string   // resolved path, "" when inline
	Method  string   // default POST
	Headers []Header // from headers (inline) and header_files (secret), sorted by name

	// E-mail.
	SMTPHost     string
	SMTPPort     int    // default 587 (465 with SMTPTLS "tls", 25 with "none")
	SMTPTLS      string // "starttls" (default), "tls" or "none"
	SMTPUser     string // "" for no authentication
	SMTPPassword Secret // from smtp_password_file
	From         string
	To           []string
	Subject      *template.Template // default "{{.Title}}"

	// Body renders a tmpl.Message; default "{{json .}}" for a webhook,
	// "{{.Text}}" for e-mail.
	Body *template.Template

	GroupWindow time.Duration // one message for a burst; default 30 s
	Queue       int           // tasks waiting at most; default 1000
	Timeout     time.Duration // bounds one delivery; default 30 s

	Rules []NotifyRule  // [[notify.rule]]: finished tasks
	Stale []NotifyStale // [[notify.stale]]: guests without a recent good backup
}

// Header is one HTTP header of a webhook.
type Header struct {
	Name  string
	Value Secret // from a file when File is set; inline values are printed redacted too
	File  string
}

// NotifyRule selects finished tasks; every condition set must hold.
type NotifyRule struct {
	Remotes []string       // remote ids; empty: all
	Type    string         // substring of the worker type (like typefilter); "": any
	Status  task.StatusSet // classes; default error
	User    string         // substring of the user, case-insensitive; "": any
}

// Match reports whether the finished task t matches the rule.
func (r NotifyRule) Match(t *task.Task) bool {
	if t.Running() {
		return false
	}
	if len(r.Remotes) > 0 && !slices.Contains(r.Remotes, t.Remote) {
		return false
	}
	f := task.Filter{TypeFilter: r.Type, StatusFilter: r.Status, UserFilter: r.User}
	return f.Match(t)
}

// NotifyStale is a "no successful backup for Hours hours" rule.
type NotifyStale struct {
	Hours   int
	Remotes []string // empty: all
}

// MatchTask reports whether t matches any rule of n.
func (n *Notify) MatchTask(t *task.Task) bool {
	for i := range n.Rules {
		if n.Rules[i].Match(t) {
			return true
		}
	}
	return false
}

type (
	rawNotify struct {
		Name         any            `toml:"name"`
		Kind         any            `toml:"kind"`
		URL          any            `toml:"url"`
		URLFile      any            `toml:"url_file"`
		Method       any            `toml:"method"`
		Headers      map[string]any `toml:"headers"`
		HeaderFiles  map[string]any `toml:"header_files"`
		SMTPHost     any            `toml:"smtp_host"`
		SMTPPort     any            `toml:"smtp_port"`
		SMTPTLS      any            `toml:"smtp_tls"`
		SMTPUser     any            `toml:"smtp_user"`
		SMTPPassword any            `toml:"smtp_password_file"`
		From         any            `toml:"from"`
		To           any            `toml:"to"`
		Subject      any            `toml:"subject"`
		Body         any            `toml:"body"`
		GroupWindow  any            `toml:"group_window"`
		Queue        any            `toml:"queue"`
		Timeout      any            `toml:"timeout"`
		Rules        []rawRule      `toml:"rule"`
		Stale        []rawStale     `toml:"stale"`
	}
	rawRule struct {
		Remotes any `toml:"remotes"`
		Type    any `toml:"type"`
		Status  any `toml:"status"`
		User    any `toml:"user"`
	}
	rawStale struct {
		Hours   any `toml:"hours"`
		Remotes any `toml:"remotes"`
	}
)

// notifyTargets builds and checks the [[notify]] targets; remotes are the
// configured ones (rules may only name those).
func (b *builder) notifyTargets(raw []rawNotify, remotes []Remote) []Notify {
	if len(raw) == 0 {
		return nil
	}
	for _, r := range raw {
		if s, ok := r.URL.(string); ok {
			b.ps.addSecret(s)
		}
	}
	ids := map[string]bool{}
	for _, r := range remotes {
		ids[r.ID] = true
	}
	out := make([]Notify, len(raw))
	first := map[string]int{}
	for i := range raw {
		path := fmt.Sprintf("notify[%d]", i)
		out[i] = b.notify(&raw[i], path, ids)
		if name := out[i].Name; name != "" {
			if j, dup := first[name]; dup {
				b.ps.add(path+".name", "duplicate name: notify[%d] (line %d) has it too", j, b.ps.pos.line(fmt.Sprintf("notify[%d].name", j)))
			} else {
				first[name] = i
			}
		}
	}
	return out
}

func (b *builder) notify(raw *rawNotify, path string, remotes map[string]bool) Notify {
	n := Notify{Method: "POST", SMTPTLS: "starttls", GroupWindow: DefaultNotifyWindow, Queue: DefaultNotifyQueue, Timeout: DefaultNotifyTimeout}
	if !b.str(raw.Name, path+".name", &n.Name) {
		b.ps.add(path+".name", "missing")
	} else if task.ValidateRemoteID(n.Name) != nil {
		b.ps.add(path+".name", "want a safe id: letters, digits, '-', '_' and '.', starting with a letter or digit")
	}
	if !b.str(raw.Kind, path+".kind", &n.Kind) {
		b.ps.add(path+".kind", `missing: "webhook" or "email"`)
	}
	b.duration(raw.GroupWindow, path+".group_window", &n.GroupWindow)
	if n.GroupWindow < 0 || n.GroupWindow > maxNotifyWindow {
		b.ps.add(path+".group_window", "want a duration from 0s to 1h")
	}
	if b.integer(raw.Queue, path+".queue", &n.Queue) && (n.Queue < 1 || n.Queue > maxNotifyQueue) {
		b.ps.add(path+".queue", "want 1 to %d", maxNotifyQueue)
	}
	b.duration(raw.Timeout, path+".timeout", &n.Timeout)
	if n.Timeout < time.Second || n.Timeout > 10*time.Minute {
		b.ps.add(path+".timeout", "want a duration from 1s to 10m")
	}
	switch n.Kind {
	case NotifyWebhook:
		b.webhook(raw, path, &n)
	case NotifyEmail:
		b.email(raw, path, &n)
	case "":
	default:
		b.ps.add(path+".kind", `want "webhook" or "email"`)
	}
	for j := range raw.Rules {
		n.Rules = append(n.Rules, b.rule(&raw.Rules[j], fmt.Sprintf("%s.rule[%d]", path, j), remotes))
	}
	for j := range raw.Stale {
		n.Stale = append(n.Stale, b.stale(&raw.Stale[j], fmt.Sprintf("%s.stale[%d]", path, j), remotes))
	}
	if len(raw.Rules) == 0 && len(raw.Stale) == 0 {
		b.ps.add(path, "no rule: add a [[notify.rule]] (finished tasks) or a [[notify.stale]] (guests without a recent backup)")
	}
	return n
}

// notOther reports the keys set in raw that the other kind uses.
func (b *builder) notOther(path, kind string, keys map[string]any) {
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}) {
		if keys[k] != nil {
			b.ps.add(path+"."+k, "not a key of kind %q", kind)
		}
	}
}

func (b *builder) webhook(raw *rawNotify, path string, n *Notify) {
	b.notOther(path, NotifyWebhook, map[string]any{"smtp_host": raw.SMTPHost, "smtp_port": raw.SMTPPort, "smtp_tls": raw.SMTPTLS,
		"smtp_user": raw.SMTPUser, "smtp_password_file": raw.SMTPPassword, "from": raw.From, "to": raw.To, "subject": raw.Subject})
	// The URL is a secret (it often carries a token): url or url_file,
	// as every secret; an inline one is checked as one too.
	u, file := b.secret(raw.URL, raw.URLFile, path, "url")
	n.URLFile = file
	if u != "" {
		if msg := checkWebhookURL(string(u)); msg == "" {
			n.URL = u
		} else if file != "" {
			b.ps.add(path+".url_file", "the file's URL: %s", msg)
		} else {
			b.ps.add(path+".url", "%s", msg)
		}
	}
	if b.str(raw.Method, path+".method", &n.Method) {
		n.Method = strings.ToUpper(n.Method)
		if n.Method != "POST" && n.Method != "PUT" {
			b.ps.add(path+".method", `want "POST" or "PUT"`)
		}
	}
	for name, v := range b.stringMap(raw.Headers, path+".headers") {
		n.Headers = append(n.Headers, Header{Name: name, Value: Secret(v)})
	}
	for name, f := range b.stringMap(raw.HeaderFiles, path+".header_files") {
		hp := path + ".header_files." + name
		f = b.resolve(f)
		s, err := readHeaderFile(f)
		if s != "" {
			b.ps.addSecret(s)
		}
		if err != nil {
			b.ps.add(hp, "%v", err)
			continue
		}
		n.Headers = append(n.Headers, Header{Name: name, Value: Secret(s), File: f})
	}
	// By canonical name, so that two spellings of one header are neighbours.
	slices.SortFunc(n.Headers, func(a, b Header) int {
		return strings.Compare(http.CanonicalHeaderKey(a.Name), http.CanonicalHeaderKey(b.Name))
	})
	for i, h := range n.Headers {
		if !validHeaderName(h.Name) {
			b.ps.add(path+".headers", "header name %q is not a valid HTTP header name", h.Name)
		} else if i > 0 && strings.EqualFold(n.Headers[i-1].Name, h.Name) {
			b.ps.add(path+".header_files."+h.Name, "header %q is set twice (headers and header_files)", h.Name)
		}
	}
	n.Body = b.template(raw.Body, path+".body", "{{json .}}")
}

func (b *builder) email(raw *rawNotify, path string, n *Notify) {
	b.notOther(path, NotifyEmail, map[string]any{"url": raw.URL, "url_file": raw.URLFile, "method": raw.Method,
		"headers": nilIfEmpty(raw.Headers), "header_files": nilIfEmpty(raw.HeaderFiles)})
	if !b.str(raw.SMTPHost, path+".smtp_host", &n.SMTPHost) || n.SMTPHost == "" {
		b.ps.add(path+".smtp_host", "missing")
	}
	if b.str(raw.SMTPTLS, path+".smtp_tls", &n.SMTPTLS) {
		switch n.SMTPTLS {
		case "starttls", "tls", "none":
		default:
			b.ps.add(path+".smtp_tls", `want "starttls", "tls" or "none"`)
		}
	}
	if !b.integer(raw.SMTPPort, path+".smtp_port", &n.SMTPPort) {
		n.SMTPPort = map[string]int{"tls": 465, "none": 25}[n.SMTPTLS]
		if n.SMTPPort == 0 {
			n.SMTPPort = 587
		}
	} else if n.SMTPPort < 1 || n.SMTPPort > 65535 {
		b.ps.add(path+".smtp_port", "want a port number from 1 to 65535")
	}
	b.str(raw.SMTPUser, path+".smtp_user", &n.SMTPUser)
	var pf string
	if b.str(raw.SMTPPassword, path+".smtp_password_file", &pf) {
		pf = b.resolve(pf)
		s, err := readSecretFile(pf)
		if s != "" {
			b.ps.addSecret(s)
		}
		if err != nil {
			b.ps.add(path+".smtp_password_file", "%v", err)
		} else {
			n.SMTPPassword = Secret(s)
		}
	}
	if n.SMTPUser != "" && raw.SMTPPassword == nil {
		b.ps.add(path+".smtp_password_file", "missing: smtp_user is set")
	}
	if n.SMTPTLS == "none" && n.SMTPUser != "" {
		b.ps.add(path+".smtp_tls", `"none" would send the password in clear: use "starttls" or "tls"`)
	}
	if !b.str(raw.From, path+".from", &n.From) {
		b.ps.add(path+".from", "missing")
	} else if _, err := mail.ParseAddress(n.From); err != nil {
		b.ps.add(path+".from", "not an e-mail address")
	}
	n.To = b.strings(raw.To, path+".to")
	if len(n.To) == 0 && raw.To == nil {
		b.ps.add(path+".to", "missing: a list of e-mail addresses")
	}
	for i, a := range n.To {
		if _, err := mail.ParseAddress(a); err != nil {
			b.ps.add(fmt.Sprintf("%s.to[%d]", path, i), "not an e-mail address")
		}
	}
	n.Subject = b.template(raw.Subject, path+".subject", "{{.Title}}")
	n.Body = b.template(raw.Body, path+".body", "{{.Text}}")
}

// template parses a message template; def is used when it is not set.
// A problem names the key's line and the template's own line.
func (b *builder) template(v any, path, def string) *template.Template {
	text := def
	if v != nil && !b.str(v, path, &text) {
		return nil
	}
	name := path[strings.LastIndex(path, ".")+1:]
	t, err := tmpl.Parse(name, text)
	if err != nil {
		b.ps.add(path, "%v", err)
		return nil
	}
	return t
}

func (b *builder) rule(raw *rawRule, path string, remotes map[string]bool) NotifyRule {
	r := NotifyRule{Remotes: b.remoteList(raw.Remotes, path+".remotes", remotes)}
	b.str(raw.Type, path+".type", &r.Type)
	b.str(raw.User, path+".user", &r.User)
	for i, s := range b.strings(raw.Status, path+".status") {
		c, ok := task.ParseStatusClass(s)
		if !ok {
			b.ps.add(fmt.Sprintf("%s.status[%d]", path, i), `want "ok", "warning", "error" or "unknown"`)
			continue
		}
		r.Status = r.Status.Add(c)
	}
	if r.Status.Empty() {
		r.Status = r.Status.Add(task.StatusError)
	}
	return r
}

func (b *builder) stale(raw *rawStale, path string, remotes map[string]bool) NotifyStale {
	s := NotifyStale{Remotes: b.remoteList(raw.Remotes, path+".remotes", remotes)}
	if !b.integer(raw.Hours, path+".hours", &s.Hours) {
		if raw.Hours == nil {
			b.ps.add(path+".hours", "missing")
		}
	} else if s.Hours < 1 || s.Hours > maxStaleHours {
		b.ps.add(path+".hours", "want 1 to %d", maxStaleHours)
	}
	return s
}

// remoteList returns a list of configured remote ids.
func (b *builder) remoteList(v any, path string, remotes map[string]bool) []string {
	list := b.strings(v, path)
	for i, id := range list {
		if !remotes[id] {
			b.ps.add(fmt.Sprintf("%s[%d]", path, i), "no [[remote]] has id %q", id)
		}
	}
	return list
}

// stringMap returns an inline table of strings.
func (b *builder) stringMap(m map[string]any, path string) map[string]string {
	out := make(map[string]string, len(m))
	for k, e := range m {
		s, ok := e.(string)
		if !ok {
			b.ps.add(path+"."+k, "want a string, not %s", tomlType(e))
			continue
		}
		out[k] = s
	}
	return out
}

// checkWebhookURL returns what is wrong with a webhook URL, never
// quoting it (it may hold a token).
func checkWebhookURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "want an http:// or https:// URL"
	case u.Host == "":
		return "no host"
	}
	return ""
}

// readHeaderFile reads a header value from a file: like a secret file,
// but a header value may hold spaces ("Bearer abc").
func readHeaderFile(path string) (string, error) {
	s, err := readSecretFile(path)
	if err == nil || s == "" {
		return s, err
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || r > 0x7e {
			return s, fmt.Errorf("secret file %s: holds control or non-ASCII characters", path)
		}
	}
	return s, nil
}

// validHeaderName reports whether s is an HTTP token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return false
		}
	}
	return true
}

// nilIfEmpty returns m, or an untyped nil when m is empty.
func nilIfEmpty(m map[string]any) any {
	if len(m) == 0 {
		return nil
	}
	return m
}

// NotifyEqual reports whether two lists of targets are the same
// configuration (templates compared by their parsed text).
func NotifyEqual(a, b []Notify) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if templateText(x.Body) != templateText(y.Body) || templateText(x.Subject) != templateText(y.Subject) {
			return false
		}
		x.Body, x.Subject, y.Body, y.Subject = nil, nil, nil, nil
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

func templateText(t *template.Template) string {
	if t == nil || t.Tree == nil {
		return ""
	}
	return t.Root.String()
}
