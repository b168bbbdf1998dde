// Package tmpl is the data model and the text/template functions of
// notification messages: what a [[notify]] target's body (and an e-mail's
// subject) may use. The configuration parses and test-renders the
// templates with it (so check-config finds a bad template), and package
// notify renders them.
package tmpl

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Message is what a template renders: one notification.
type Message struct {
	Target string // the [[notify]] target's name
	Title  string // one line: "3 failed tasks: pve-east, pbs-1"
	Text   string // plain text: the title, then one line per task and guest
	Tasks  []Task // the finished tasks of this message, oldest first
	// Dropped counts tasks that matched a rule but were dropped since the
	// previous message because the target's queue was full.
	Dropped int
	Stale   []StaleGuest // guests without a successful backup for too long
	Test    bool         // sent by `taskfleet notify test`
}

// Task is one finished task of a Message.
type Task struct {
	Remote string    `json:"remote"`
	Node   string    `json:"node"`
	Type   string    `json:"type"` // worker type: "vzdump"
	ID     string    `json:"id"`   // worker id: "100", "" when none
	User   string    `json:"user"`
	UPID   string    `json:"upid"`
	Status string    `json:"status"` // the exit status as the remote said it
	Class  string    `json:"class"`  // ok, warning, error or unknown
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
}

// StaleGuest is a guest whose last successful backup is older than a
// rule's threshold.
type StaleGuest struct {
	Remote string    `json:"remote"`
	Node   string    `json:"node,omitempty"`
	VMID   string    `json:"vmid"`
	Name   string    `json:"name,omitempty"`
	LastOK time.Time `json:"last_ok"` // zero: never backed up
	Hours  int       `json:"hours"`   // the rule's threshold
}

// MaxListed is how many tasks (and guests) Text lists; Tasks and Stale
// hold them all.
const MaxListed = 50

// Funcs are the functions templates may call besides text/template's
// built-ins: json quotes any value as JSON (strings included), so that
// `{"text": {{json .Text}}}` is valid JSON whatever the text holds.
func Funcs() template.FuncMap {
	return template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}
}

// Error is a template's problem: its line within the template (0 when
// unknown) and what is wrong.
type Error struct {
	Line    int
	Message string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("template line %d: %s", e.Line, e.Message)
	}
	return "template: " + e.Message
}

// Parse parses text as the template name and renders it once with
// Sample, so that a reference to an unknown field is found too. A
// problem is an *Error.
func Parse(name, text string) (*template.Template, error) {
	t, err := template.New(name).Funcs(Funcs()).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, templateError(name, err)
	}
	if _, err := Render(t, Sample()); err != nil {
		return nil, err
	}
	return t, nil
}

// maxRendered bounds a rendered message.
const maxRendered = 1 << 20

// Render executes t with m. A problem is an *Error.
func Render(t *template.Template, m Message) (string, error) {
	var b limitedBuilder
	if err := t.Execute(&b, m); err != nil {
		return "", templateError(t.Name(), err)
	}
	return b.String(), nil
}

// limitedBuilder is a strings.Builder that refuses more than maxRendered
// bytes.
type limitedBuilder struct{ strings.Builder }

func (b *limitedBuilder) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxRendered {
		return 0, errors.New("rendered message larger than 1 MiB")
	}
	return b.Builder.Write(p)
}

// position matches text/template's "template: NAME:LINE[:COL]: " prefix.
var position = regexp.MustCompile(`^template: ([^:]*):(\d+)(?::\d+)?: (.*)$`)

// templateError turns a text/template error into an *Error with the
// template's line.
func templateError(name string, err error) error {
	msg := err.Error()
	if m := position.FindStringSubmatch(msg); m != nil && m[1] == name {
		line, _ := strconv.Atoi(m[2])
		return &Error{Line: line, Message: m[3]}
	}
	return &Error{Message: strings.TrimPrefix(msg, "template: ")}
}

// Sample returns the message `taskfleet notify test` sends, also used to
// check templates.
func Sample() Message {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tasks := []Task{{
		Remote: "pve-east", Node: "pve1", Type: "vzdump", ID: "100", User: "root@pam",
		UPID:   "UPID:pve1:00001234:00ABCDEF:6957350D:vzdump:100:root@pam:",
		Status: "job errors", Class: "error", Start: start, End: start.Add(83 * time.Second),
	}}
	stale := []StaleGuest{{Remote: "pve-east", Node: "pve1", VMID: "101", Name: "db1", LastOK: start.Add(-30 * time.Hour), Hours: 26}}
	m := Message{Target: "test", Tasks: tasks, Stale: stale, Test: true}
	m.Title, m.Text = Summarize(m)
	m.Title, m.Text = "[test] "+m.Title, "[test] "+m.Text
	return m
}

// Summarize returns the default title and text of m.
func Summarize(m Message) (title, text string) {
	var parts []string
	if len(m.Tasks) > 0 {
		var failed, warned, ok int
		for _, t := range m.Tasks {
			switch t.Class {
			case "ok":
				ok++
			case "warning":
				warned++
			default:
				failed++
			}
		}
		var counts []string
		if failed > 0 {
			counts = append(counts, plural(failed, "failed task", "failed tasks"))
		}
		if warned > 0 {
			counts = append(counts, plural(warned, "task", "tasks")+" with warnings")
		}
		if ok > 0 {
			counts = append(counts, plural(ok, "task", "tasks")+" ok")
		}
		parts = append(parts, strings.Join(counts, ", ")+" ("+strings.Join(remotes(m), ", ")+")")
	}
	if len(m.Stale) > 0 {
		parts = append(parts, plural(len(m.Stale), "guest", "guests")+" without a recent successful backup")
	}
	if len(parts) == 0 {
		parts = append(parts, "no news")
	}
	title = "taskfleet: " + strings.Join(parts, "; ")
	var b strings.Builder
	b.WriteString(title)
	b.WriteString("\n")
	for i, t := range m.Tasks {
		if i == MaxListed {
			fmt.Fprintf(&b, "\n... and %d more tasks", len(m.Tasks)-MaxListed)
			break
		}
		fmt.Fprintf(&b, "\n%s %s %s %s: %s (ended %s)", t.Remote, t.Node, t.Type, t.ID, t.Status, t.End.UTC().Format(time.RFC3339))
	}
	if m.Dropped > 0 {
		fmt.Fprintf(&b, "\n%d further matching tasks were dropped: the queue was full", m.Dropped)
	}
	for i, g := range m.Stale {
		if i == MaxListed {
			fmt.Fprintf(&b, "\n... and %d more guests", len(m.Stale)-MaxListed)
			break
		}
		last := "never"
		if !g.LastOK.IsZero() {
			last = g.LastOK.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "\n%s guest %s %s: no successful backup for %d h (last: %s)", g.Remote, g.VMID, g.Name, g.Hours, last)
	}
	return title, b.String()
}

func remotes(m Message) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range m.Tasks {
		if !seen[t.Remote] {
			seen[t.Remote] = true
			out = append(out, t.Remote)
		}
	}
	if len(out) > 5 {
		out = append(out[:5], "...")
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
