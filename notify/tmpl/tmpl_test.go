package tmpl

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestDocumentedBodies: the example bodies of docs/configuration.md parse
// and, where they are JSON, render valid JSON whatever the text holds.
func TestDocumentedBodies(t *testing.T) {
	bodies := map[string]string{
		"ntfy":    "{{.Text}}",
		"gotify":  `{"title": {{json .Title}}, "message": {{json .Text}}, "priority": 8}`,
		"slack":   `{"text": {{json .Text}}}`,
		"discord": `{"content": {{json .Title}}, "embeds": [{"description": {{json .Text}}}]}`,
		"generic": `{{json .}}`,
		"own": `
{"source": "taskfleet", "alerts": [
{{- range $i, $t := .Tasks}}{{if $i}},{{end}}
  {"remote": {{json $t.Remote}}, "upid": {{json $t.UPID}}, "status": {{json $t.Status}}}
{{- end}}
]}
`,
	}
	m := Sample()
	m.Tasks = append(m.Tasks, m.Tasks[0])
	m.Tasks[1].Status = `quote " backslash \ newline` + "\n" + `tab	end`
	m.Title, m.Text = Summarize(m)
	for name, text := range bodies {
		tp, err := Parse(name, text)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := Render(tp, m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name != "ntfy" && !json.Valid([]byte(out)) {
			t.Errorf("%s: not JSON: %s", name, out)
		}
	}
}

func TestTemplateErrorsHaveTheirLine(t *testing.T) {
	for text, want := range map[string]string{
		"a\n{{.Title}\n":       "template line 2: bad character U+007D '}'",
		"a\nb\n{{.Nope}}":      `template line 3: executing "body" at <.Nope>: can't evaluate field Nope in type tmpl.Message`,
		"{{range .Tasks}}":     "template line 1: unexpected EOF",
		"{{ printf \"%d\" }}x": "",
	} {
		_, err := Parse("body", text)
		var te *Error
		switch {
		case want == "" && err == nil:
		case want == "" || !errors.As(err, &te) || err.Error() != want:
			t.Errorf("%q: got %v, want %q", text, err, want)
		}
	}
}

func TestSummarize(t *testing.T) {
	m := Sample()
	m.Test = false
	m.Dropped = 4
	title, text := Summarize(m)
	if title != "taskfleet: 1 failed task (pve-east); 1 guest without a recent successful backup" {
		t.Errorf("title %q", title)
	}
	w := m.Tasks[0]
	w.Class, w.Remote = "warning", "pbs-1"
	o := w
	o.Class = "ok"
	m.Tasks = append(m.Tasks, w, w, o)
	if title, _ := Summarize(m); title != "taskfleet: 1 failed task, 2 tasks with warnings, 1 task ok (pve-east, pbs-1); 1 guest without a recent successful backup" {
		t.Errorf("title %q", title)
	}
	for _, want := range []string{"pve-east pve1 vzdump 100: job errors (ended 2026-01-02T03:05:28Z)", "4 further matching tasks were dropped", "guest 101 db1: no successful backup for 26 h"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}
