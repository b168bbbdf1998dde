package sim

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/taskfleet/taskfleet/task"
)

// listQuery is a task list request of either product, validated.
type listQuery struct {
	start, limit  int
	source        string // PVE: archive, active or all
	running       bool   // PBS: only running tasks
	errors        bool
	typeFilter    string
	userFilter    string
	vmid          string // PVE
	store         string // PBS
	since, until  int64
	hasSince      bool
	hasUntil      bool
	statusFilter  task.StatusSet
	hasStatusFilt bool
}

var intPattern = regexp.MustCompile(`^[+-]?[0-9]+$`)

// paramReader validates query parameters and collects the errors per
// parameter, as both products report them.
type paramReader struct {
	q    url.Values
	pbs  bool
	errs map[string]string
}

func newParamReader(q url.Values, pbs bool, allowed ...string) *paramReader {
	p := &paramReader{q: q, pbs: pbs, errs: map[string]string{}}
	for k := range q {
		if !slices.Contains(allowed, k) {
			if pbs {
				p.errs[k] = "schema does not allow additional properties."
			} else {
				p.errs[k] = "property is not defined in schema and the schema does not allow additional properties"
			}
		}
	}
	return p
}

// value returns the parameter's value; PVE joins repeated values with
// NUL (as pve-http-server does), PBS refuses them.
func (p *paramReader) value(k string) (string, bool) {
	vs, ok := p.q[k]
	if !ok {
		return "", false
	}
	if len(vs) > 1 && p.pbs {
		p.errs[k] = "duplicate parameter."
		return "", false
	}
	return strings.Join(vs, "\x00"), true
}

// int reads an integer parameter with a minimum.
func (p *paramReader) int(k string, def, minimum int64) int64 {
	v, ok := p.value(k)
	if !ok {
		return def
	}
	if !intPattern.MatchString(v) {
		if p.pbs {
			p.errs[k] = "value '" + v + "' is not a valid integer"
		} else {
			p.errs[k] = "type check ('integer') failed - got '" + v + "'"
		}
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		p.errs[k] = "value '" + v + "' is out of range"
		return def
	}
	if n < minimum {
		p.errs[k] = "value must have a minimum value of " + strconv.FormatInt(minimum, 10)
		return def
	}
	return n
}

// bool reads a boolean parameter: 1/0, true/false, yes/no, on/off.
func (p *paramReader) bool(k string) bool {
	v, ok := p.value(k)
	if !ok {
		return false
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	if p.pbs {
		p.errs[k] = "Unable to parse boolean '" + v + "'."
	} else {
		p.errs[k] = "type check ('boolean') failed - got '" + v + "'"
	}
	return false
}

// statusSet reads statusfilter: PVE a list separated by commas, spaces,
// semicolons or NULs; PBS the repeated parameter. Case-insensitive.
func (p *paramReader) statusSet(k string) (task.StatusSet, bool) {
	vs, ok := p.q[k]
	if !ok {
		return 0, false
	}
	var words []string
	for _, v := range vs {
		if p.pbs {
			words = append(words, v)
			continue
		}
		words = append(words, strings.FieldsFunc(v, func(r rune) bool {
			return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == 0
		})...)
	}
	var set task.StatusSet
	for _, w := range words {
		c, ok := task.ParseStatusClass(w)
		if !ok || (p.pbs && w != strings.ToLower(w)) {
			if p.pbs {
				p.errs[k] = "value '" + w + "' is not defined in the enumeration."
			} else {
				p.errs[k] = "invalid format - value '" + w + "' does not look like a valid task status type"
			}
			return 0, false
		}
		set = set.Add(c)
	}
	return set, true
}

// The query parameters of the task lists (the path's node aside), as in
// the products' API schemas; a test compares them with the fixtures.
var (
	pveListParams = []string{"start", "limit", "source", "errors", "typefilter", "userfilter", "vmid", "since", "until", "statusfilter"}
	pbsListParams = []string{"start", "limit", "store", "running", "errors", "userfilter", "since", "until", "typefilter", "statusfilter"}
)

// parsePVEList validates the parameters of GET /nodes/{node}/tasks.
func parsePVEList(q url.Values) (listQuery, map[string]string) {
	p := newParamReader(q, false, pveListParams...)
	lq := listQuery{
		start: int(p.int("start", 0, 0)),
		limit: int(p.int("limit", task.DefaultLimit, 0)),
	}
	lq.source = "archive"
	if v, ok := p.value("source"); ok {
		if v == "archive" || v == "active" || v == "all" {
			lq.source = v
		} else {
			p.errs["source"] = "value '" + v + "' does not have a value in the enumeration 'archive, active, all'"
		}
	}
	lq.errors = p.bool("errors")
	lq.typeFilter, _ = p.value("typefilter")
	lq.userFilter, _ = p.value("userfilter")
	if _, ok := q["vmid"]; ok {
		if v := p.int("vmid", 0, 100); v > 999999999 {
			p.errs["vmid"] = "value may not exceed 999999999"
		} else if v > 0 {
			lq.vmid = strconv.FormatInt(v, 10)
		}
	}
	if _, lq.hasSince = q["since"]; lq.hasSince {
		lq.since = p.int("since", 0, -1<<62)
	}
	if _, lq.hasUntil = q["until"]; lq.hasUntil {
		lq.until = p.int("until", 0, -1<<62)
	}
	lq.statusFilter, lq.hasStatusFilt = p.statusSet("statusfilter")
	return lq, p.errs
}

// parsePBSList validates the parameters of PBS's GET /nodes/{node}/tasks.
func parsePBSList(q url.Values) (listQuery, map[string]string) {
	p := newParamReader(q, true, pbsListParams...)
	lq := listQuery{
		start: int(p.int("start", 0, 0)),
		limit: int(p.int("limit", task.DefaultLimit, 0)),
	}
	lq.store, _ = p.value("store")
	lq.running = p.bool("running")
	lq.errors = p.bool("errors")
	lq.userFilter, _ = p.value("userfilter")
	lq.typeFilter, _ = p.value("typefilter")
	if _, lq.hasSince = q["since"]; lq.hasSince {
		lq.since = p.int("since", 0, -1<<62)
	}
	if _, lq.hasUntil = q["until"]; lq.hasUntil {
		lq.until = p.int("until", 0, -1<<62)
	}
	lq.statusFilter, lq.hasStatusFilt = p.statusSet("statusfilter")
	return lq, p.errs
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
