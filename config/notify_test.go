package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

const notifyOK = `
[[notify]]
name = "ntfy"
kind = "webhook"
url_file = "ntfy.url"
headers = { Title = "taskfleet", Priority = "high" }
header_files = { Authorization = "ntfy.auth" }
body = """
{{.Text}}
"""

[[notify.rule]]
remotes = ["pve-east"]
type = "vzdump"
status = ["error", "warning"]
user = "root@pam"

[[notify.stale]]
hours = 26

[[notify]]
name = "mail"
kind = "email"
smtp_host = "mail.example.com"
smtp_user = "taskfleet"
smtp_password_file = "smtp.pass"
from = "taskfleet@example.com"
to = ["ops@example.com"]

[[notify.rule]]
`

var notifyFiles = map[string]string{
	"ntfy.url":  "https://ntfy.example.com/alerts?auth=0123456789abcdef\n",
	"ntfy.auth": "Bearer tk_0123456789abcdef\n",
	"smtp.pass": "p4ssw0rd-0123456789\n",
}

func TestNotifyConfig(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, notifyFiles)
	cfg, err := Parse([]byte(base+notifyOK), "taskfleet.toml", dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Notify) != 2 {
		t.Fatalf("got %d targets", len(cfg.Notify))
	}
	w, m := cfg.Notify[0], cfg.Notify[1]
	if w.URL.Reveal() != "https://ntfy.example.com/alerts?auth=0123456789abcdef" || w.Method != "POST" || w.GroupWindow != DefaultNotifyWindow || w.Queue != DefaultNotifyQueue {
		t.Errorf("webhook: %+v", w)
	}
	var names []string
	for _, h := range w.Headers {
		names = append(names, h.Name+"="+h.Value.Reveal())
	}
	if want := []string{"Authorization=Bearer tk_0123456789abcdef", "Priority=high", "Title=taskfleet"}; !slices.Equal(names, want) {
		t.Errorf("headers %q, want %q", names, want)
	}
	r := w.Rules[0]
	if !r.Status.Has(task.StatusError) || !r.Status.Has(task.StatusWarning) || r.Status.Has(task.StatusOK) || len(w.Stale) != 1 || w.Stale[0].Hours != 26 {
		t.Errorf("rules: %+v %+v", w.Rules, w.Stale)
	}
	if m.SMTPPort != 587 || m.SMTPTLS != "starttls" || m.SMTPPassword.Reveal() != "p4ssw0rd-0123456789" || m.Subject == nil || m.Body == nil {
		t.Errorf("email: %+v", m)
	}
	// A rule without conditions matches failed tasks only.
	if st := m.Rules[0].Status; !st.Has(task.StatusError) || st.Has(task.StatusWarning) {
		t.Errorf("default status %v", st)
	}
}

func TestNotifyRuleMatch(t *testing.T) {
	r := NotifyRule{Remotes: []string{"a"}, Type: "vzd", User: "ROOT", Status: task.StatusSet(0).Add(task.StatusError)}
	ok := task.Task{Remote: "a", UPID: task.UPID{Type: "vzdump", User: "root@pam"}, EndTime: 5, Status: "job errors"}
	if !r.Match(&ok) {
		t.Fatal("want a match")
	}
	for name, edit := range map[string]func(*task.Task){
		"remote":  func(t *task.Task) { t.Remote = "b" },
		"type":    func(t *task.Task) { t.UPID.Type = "qmstart" },
		"user":    func(t *task.Task) { t.UPID.User = "bob@pve" },
		"status":  func(t *task.Task) { t.Status = "OK" },
		"running": func(t *task.Task) { t.EndTime, t.Status = 0, "" },
	} {
		x := ok
		edit(&x)
		if r.Match(&x) {
			t.Errorf("%s: matches", name)
		}
	}
}

func TestNotifyProblems(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"bad template", `
[[notify]]
name = "hook"
kind = "webhook"
url = "https://hooks.example.com/x"
body = """
{"text": {{json .Text}},
 "n": {{.Nope}}}
"""
[[notify.rule]]
`, []string{`taskfleet.toml:18: notify[0].body: template line 2: executing "body" at <.Nope>: can't evaluate field Nope in type tmpl.Message`}},
		{"unknown function", `
[[notify]]
name = "hook"
kind = "webhook"
url = "https://hooks.example.com/x"
body = '{{ shout .Text }}'
[[notify.rule]]
`, []string{`taskfleet.toml:18: notify[0].body: template line 1: function "shout" not defined`}},
		{"inline url checked as a secret", `
[[notify]]
name = "hook"
kind = "webhook"
url = "https://hooks.example.com/café"
[[notify.rule]]
`, []string{`taskfleet.toml:17: notify[0].url: secret contains white space, control or non-ASCII characters`}},
		{"kinds and rules", `
[[notify]]
name = "bad name!"
kind = "pager"
[[notify]]
name = "m"
kind = "email"
url = "https://x.example.com"
smtp_host = "mail.example.com"
smtp_tls = "none"
smtp_user = "u"
from = "nobody"
[[notify.rule]]
remotes = ["pve-west"]
status = ["failed"]
[[notify.stale]]
hours = 0
`, []string{
			`taskfleet.toml:14: notify[0]: no rule: add a [[notify.rule]] (finished tasks) or a [[notify.stale]] (guests without a recent backup)`,
			`taskfleet.toml:15: notify[0].name: want a safe id: letters, digits, '-', '_' and '.', starting with a letter or digit`,
			`taskfleet.toml:16: notify[0].kind: want "webhook" or "email"`,
			`taskfleet.toml:17: notify[1].smtp_password_file: missing: smtp_user is set`,
			`taskfleet.toml:17: notify[1].to: missing: a list of e-mail addresses`,
			`taskfleet.toml:20: notify[1].url: not a key of kind "email"`,
			`taskfleet.toml:22: notify[1].smtp_tls: "none" would send the password in clear: use "starttls" or "tls"`,
			`taskfleet.toml:24: notify[1].from: not an e-mail address`,
			`taskfleet.toml:26: notify[1].rule[0].remotes[0]: no [[remote]] has id "pve-west"`,
			`taskfleet.toml:27: notify[1].rule[0].status[0]: want "ok", "warning", "error" or "unknown"`,
			`taskfleet.toml:29: notify[1].stale[0].hours: want 1 to 8760`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := problemsOf(t, base+c.src, nil)
			if !slices.Equal(got, c.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// TestNotifySecretsStayOut: a URL or header read from a file never shows
// in a problem, even when it is what is wrong.
func TestNotifySecretsStayOut(t *testing.T) {
	dir := t.TempDir()
	secret := "ftp://hooks.example.com/T000/B000/XXXXSECRETXXXX"
	if err := os.WriteFile(filepath.Join(dir, "hook.url"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	src := base + `
[[notify]]
name = "slack"
kind = "webhook"
url_file = "hook.url"
body = '{"text": {{json .Text}}}'
[[notify.rule]]
`
	_, err := Parse([]byte(src), "taskfleet.toml", dir)
	if err == nil {
		t.Fatal("no problem")
	}
	if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "hooks.example.com") {
		t.Fatalf("secret in %q", err)
	}
	if !strings.Contains(err.Error(), "want an http:// or https:// URL") {
		t.Fatalf("got %q", err)
	}
}

func TestNotifyEqual(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, notifyFiles)
	load := func(src string) []Notify {
		cfg, err := Parse([]byte(base+src), "taskfleet.toml", dir)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Notify
	}
	a, b := load(notifyOK), load(notifyOK)
	if !NotifyEqual(a, b) {
		t.Error("the same file loaded twice differs")
	}
	if NotifyEqual(a, load(strings.Replace(notifyOK, "{{.Text}}", "{{.Title}}", 1))) {
		t.Error("a changed body is equal")
	}
	if NotifyEqual(a, load(strings.Replace(notifyOK, "hours = 26", "hours = 27", 1))) {
		t.Error("a changed rule is equal")
	}
}

// TestNotifyHeaderTwice: a header in both headers and header_files is
// found whatever the spelling, also with another header sorting between
// the two spellings ("X-Token" < "Y-Other" < "x-token").
func TestNotifyHeaderTwice(t *testing.T) {
	got := problemsOf(t, base+`
[[notify]]
name = "hook"
kind = "webhook"
url = "https://hooks.example.com/x"
headers = { X-Token = "a", Y-Other = "b" }
header_files = { x-token = "token" }
[[notify.rule]]
`, map[string]string{"token": "secret\n"})
	if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, "is set twice") }) {
		t.Errorf("no 'set twice' problem in:\n%s", strings.Join(got, "\n"))
	}
}
