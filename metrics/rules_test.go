package metrics

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskfleet/taskfleet/task"
)

// outcomeRegistry registers every outcome collector with a series each,
// and returns the label names of each metric.
func outcomeLabels(t *testing.T) map[string][]string {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.NewFinishedRecorder().Add("east", "vzdump", task.StatusError, 1)
	m.SetCacheCountsFunc(func() (CacheCounts, bool) {
		return CacheCounts{Running: map[RemoteType]int{{"east", "vzdump"}: 1}, Finished: map[string]task.Counts{"east": {OK: 1}}}, true
	})
	reg.MustRegister(NewGuestBackups(0, func() []GuestBackup {
		return []GuestBackup{{Remote: "east", Node: "n1", VMID: "100", GuestType: "qemu", LastOK: 1, LastAttempt: 1}}
	}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string][]string{}
	for _, mf := range mfs {
		var names []string
		if len(mf.GetMetric()) > 0 {
			for _, l := range mf.GetMetric()[0].GetLabel() {
				names = append(names, l.GetName())
			}
		}
		labels[mf.GetName()] = names
	}
	return labels
}

// TestAlertRulesInDocs checks the rule file of docs/metrics.md without
// Prometheus (no rules parser or YAML library is a dependency): its shape
// (every rule has an alert name, an expr and labels, indented with
// spaces), and in each expr that every metric exists, every label matcher
// names a label the metric has, statuses are status classes, the types
// are pinned (so they never fold into "other") and the brackets balance.
// docs/metrics.md also lists every outcome metric in its table.
func TestAlertRulesInDocs(t *testing.T) {
	data, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	labels := outcomeLabels(t)
	for name := range labels {
		if isOutcome(name) && !strings.Contains(doc, "| `"+name+"` |") {
			t.Errorf("docs/metrics.md has no row for %s", name)
		}
	}
	_, block, ok := strings.Cut(doc, "```yaml\n")
	if !ok {
		t.Fatal("no ```yaml block in docs/metrics.md")
	}
	block, _, _ = strings.Cut(block, "```")
	if !strings.HasPrefix(block, "groups:\n  - name: ") {
		t.Errorf("the rule file does not start with groups: and a named group")
	}
	type rule struct {
		alert, expr string
		hasLabels   bool
	}
	var rules []rule
	inExpr := false
	for i, line := range strings.Split(block, "\n") {
		if strings.Contains(line, "\t") {
			t.Errorf("rule file line %d: a tab (YAML wants spaces)", i+1)
		}
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if trimmed != "" && indent%2 != 0 {
			t.Errorf("rule file line %d: odd indentation", i+1)
		}
		switch {
		case strings.HasPrefix(trimmed, "- alert: "):
			rules = append(rules, rule{alert: strings.TrimPrefix(trimmed, "- alert: ")})
			inExpr = false
		case len(rules) == 0 || trimmed == "" || strings.HasPrefix(trimmed, "#"):
		case strings.HasPrefix(trimmed, "expr: |"):
			inExpr = true
		case inExpr && indent >= 10:
			rules[len(rules)-1].expr += trimmed + "\n"
		default:
			inExpr = false
			if trimmed == "labels:" {
				rules[len(rules)-1].hasLabels = true
			}
		}
	}
	if len(rules) != 4 {
		t.Fatalf("%d rules in the rule file, want 4", len(rules))
	}
	metricRe := regexp.MustCompile(`(taskfleet_[a-z_]+)(\{[^}]*\})?`)
	matcherRe := regexp.MustCompile(`([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	classes := []string{"ok", "warning", "error", "unknown"}
	for _, r := range rules {
		if r.expr == "" || !r.hasLabels {
			t.Errorf("rule %s: want an expr and labels", r.alert)
			continue
		}
		if strings.Count(r.expr, "(") != strings.Count(r.expr, ")") || strings.Count(r.expr, "[") != strings.Count(r.expr, "]") {
			t.Errorf("rule %s: brackets do not balance in %q", r.alert, r.expr)
		}
		uses := metricRe.FindAllStringSubmatch(r.expr, -1)
		if len(uses) == 0 {
			t.Errorf("rule %s uses no taskfleet metric", r.alert)
		}
		for _, u := range uses {
			have, ok := labels[u[1]]
			if !ok {
				t.Errorf("rule %s: no metric %s", r.alert, u[1])
				continue
			}
			for _, mt := range matcherRe.FindAllStringSubmatch(u[2], -1) {
				name, values := mt[1], strings.Split(mt[3], "|")
				if !slices.Contains(have, name) {
					t.Errorf("rule %s: %s has no label %s (it has %v)", r.alert, u[1], name, have)
				}
				for _, v := range values {
					if name == "status" && !slices.Contains(classes, v) {
						t.Errorf("rule %s: status %q is not a status class", r.alert, v)
					}
					if name == "type" && !slices.Contains(PinnedTaskTypes, v) {
						t.Errorf("rule %s: type %q is not pinned: it could be folded into %q", r.alert, v, OtherType)
					}
				}
			}
		}
	}
}

func isOutcome(name string) bool {
	return strings.HasPrefix(name, "taskfleet_tasks_finished") || name == "taskfleet_tasks_running" ||
		name == "taskfleet_task_types_folded_total" || strings.HasPrefix(name, "taskfleet_guest_")
}
