package backups

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxLineErrors bounds JobLog.LineErrors; further malformed lines are only
// counted in JobLog.Malformed.
const MaxLineErrors = 10

// JobLog is what a vzdump task's log says about each guest it backed up.
// It is plain data, kept as JSON by the caller (see Guests).
type JobLog struct {
	Storage string        `json:"storage,omitempty"` // the job's --storage, when the log shows it
	Guests  []GuestResult `json:"guests"`            // in the order the job backed them up
	// Ended: the log has the job's last line ("Backup job finished ...")
	// or the task's ("TASK OK", "TASK ERROR: ...").
	Ended bool `json:"ended,omitempty"`
	// Unavailable: the node no longer has the log (PVE answers one line,
	// "unable to open file - No such file or directory").
	Unavailable bool `json:"unavailable,omitempty"`
	// Malformed counts the lines that looked like guest lines but could
	// not be read; LineErrors describes the first MaxLineErrors of them.
	Malformed  int         `json:"malformed,omitempty"`
	LineErrors []LineError `json:"line_errors,omitempty"`
}

// GuestResult is one guest's outcome in a vzdump job.
type GuestResult struct {
	VMID string `json:"vmid"`
	Type string `json:"type,omitempty"` // qemu or lxc (openvz on old PVE), from the Starting line
	// Outcome: OK after "Finished Backup", Error after "Backup of VM n
	// failed - <reason>"; neither when the log ends in between (the job
	// was killed): the task's status decides then.
	OK    bool   `json:"ok,omitempty"`
	Error string `json:"error,omitempty"`
	// Start and End are Unix times from "Backup started at" and "Backup
	// finished at" / "Failed at" (node-local wall-clock times, placed in
	// UTC by the offset between the first of them and the task's start);
	// 0 when the log does not show them.
	Start    int64 `json:"start,omitempty"`
	End      int64 `json:"end,omitempty"`
	Duration int64 `json:"duration_s,omitempty"` // from "Finished Backup of VM n (HH:MM:SS)", seconds
	// Warnings counts the "WARN: " lines of the guest: from its Starting
	// line to the next guest's or the job's end (a failed log upload is
	// logged after "Finished Backup").
	Warnings int `json:"warnings,omitempty"`
}

// Status is the guest's outcome as a task status: "OK", "WARNINGS: n",
// its error, or "unknown" when the log does not show how it ended.
func (g *GuestResult) Status() string {
	switch {
	case g.OK && g.Warnings > 0:
		return "WARNINGS: " + strconv.Itoa(g.Warnings)
	case g.OK:
		return "OK"
	case g.Error != "":
		return g.Error
	}
	return "unknown"
}

// Done reports whether the log shows how the guest's backup ended.
func (g *GuestResult) Done() bool { return g.OK || g.Error != "" }

// LineError is a log line that could not be read.
type LineError struct {
	Line   int    `json:"line"` // 1-based
	Text   string `json:"text"` // at most 200 bytes of it
	Reason string `json:"reason"`
}

func (e LineError) Error() string {
	return fmt.Sprintf("vzdump log line %d %q: %s", e.Line, e.Text, e.Reason)
}

// ErrEmptyLog is returned by ParseVzdumpLog for a log without lines.
var ErrEmptyLog = errors.New("vzdump log: no lines")

// noLogLine is PVE's answer for a log it cannot open.
const noLogLine = "unable to open file - No such file or directory"

// wallLayout is the layout of vzdump's "Backup started at" times.
const wallLayout = "2006-01-02 15:04:05"

// maxOffset bounds the time-zone offset inferred from wall-clock times.
const maxOffset = 14 * 3600

// ParseVzdumpLog reads a vzdump task's log. taskStart (the UPID's start
// time) places the log's node-local wall-clock times in UTC: their
// offset from it is rounded to the quarter hour. Lines it does not know
// are ignored; a guest line it cannot read is counted in Malformed and
// skipped. It returns ErrEmptyLog for no lines and never panics.
func ParseVzdumpLog(lines []string, taskStart int64) (JobLog, error) {
	if len(lines) == 0 {
		return JobLog{}, ErrEmptyLog
	}
	var (
		j      JobLog
		cur    = -1 // index into j.Guests of the guest being backed up
		byID   = map[string]int{}
		walls  = map[wallRef]bool{} // Start/End fields holding wall-clock seconds
		first  int64                // the first wall-clock time seen
		hasAny bool
	)
	if len(lines) == 1 && strings.TrimSpace(lines[0]) == noLogLine {
		j.Unavailable = true
		return j, nil
	}
	bad := func(n int, line, reason string) {
		j.Malformed++
		if len(j.LineErrors) < MaxLineErrors {
			if len(line) > 200 {
				line = line[:200]
			}
			j.LineErrors = append(j.LineErrors, LineError{Line: n + 1, Text: line, Reason: reason})
		}
	}
	guest := func(vmid string) int {
		if i, ok := byID[vmid]; ok {
			return i
		}
		j.Guests = append(j.Guests, GuestResult{VMID: vmid})
		byID[vmid] = len(j.Guests) - 1
		return len(j.Guests) - 1
	}
	wall := func(n int, line, s string, ref wallRef) {
		t, err := time.ParseInLocation(wallLayout, strings.TrimSpace(s), time.UTC)
		if err != nil {
			bad(n, line, "time is not YYYY-MM-DD HH:MM:SS")
			return
		}
		if !hasAny {
			first, hasAny = t.Unix(), true
		}
		*ref.field(&j) = t.Unix()
		walls[ref] = true
	}
	for n, line := range lines {
		msg := stripStamp(line)
		switch {
		case strings.HasPrefix(msg, "INFO: starting new backup job: "):
			j.Storage = optionValue(msg, "--storage")
		case strings.HasPrefix(msg, "INFO: Starting Backup of VM "):
			rest := strings.TrimPrefix(msg, "INFO: Starting Backup of VM ")
			vmid, kind, ok := strings.Cut(rest, " ")
			if !validVMID(vmid) {
				bad(n, line, "no vmid after \"Starting Backup of VM\"")
				continue
			}
			cur = guest(vmid)
			if ok && strings.HasPrefix(kind, "(") && strings.HasSuffix(kind, ")") {
				j.Guests[cur].Type = kind[1 : len(kind)-1]
			}
		case strings.HasPrefix(msg, "INFO: Backup started at "):
			if cur < 0 {
				bad(n, line, "no guest started")
				continue
			}
			wall(n, line, strings.TrimPrefix(msg, "INFO: Backup started at "), wallRef{guest: cur})
		case strings.HasPrefix(msg, "INFO: Finished Backup of VM "):
			rest := strings.TrimPrefix(msg, "INFO: Finished Backup of VM ")
			vmid, dur, _ := strings.Cut(rest, " ")
			if !validVMID(vmid) {
				bad(n, line, "no vmid after \"Finished Backup of VM\"")
				continue
			}
			i := guest(vmid)
			j.Guests[i].OK, j.Guests[i].Error = true, ""
			if d, ok := parseDuration(dur); ok {
				j.Guests[i].Duration = d
			}
			cur = i
		case strings.HasPrefix(msg, "INFO: Backup finished at "), strings.HasPrefix(msg, "INFO: Failed at "):
			if cur < 0 {
				bad(n, line, "no guest started")
				continue
			}
			_, s, _ := strings.Cut(msg, " at ")
			wall(n, line, s, wallRef{guest: cur, end: true})
		case strings.HasPrefix(msg, "ERROR: Backup of VM "):
			rest := strings.TrimPrefix(msg, "ERROR: Backup of VM ")
			vmid, reason, ok := strings.Cut(rest, " failed - ")
			if !ok {
				vmid, _, ok = strings.Cut(rest, " failed")
				reason = "failed"
			}
			if !ok || !validVMID(vmid) {
				bad(n, line, "want \"ERROR: Backup of VM <vmid> failed - <reason>\"")
				continue
			}
			i := guest(vmid)
			j.Guests[i].OK, j.Guests[i].Error = false, strings.TrimSpace(reason)
			if j.Guests[i].Error == "" {
				j.Guests[i].Error = "failed"
			}
			cur = i
		case strings.HasPrefix(msg, "WARN: "):
			if cur >= 0 {
				j.Guests[cur].Warnings++
			}
		case strings.HasPrefix(msg, "INFO: Backup job finished"), strings.HasPrefix(msg, "ERROR: Backup job failed"),
			strings.HasPrefix(msg, "TASK OK"), strings.HasPrefix(msg, "TASK ERROR"), strings.HasPrefix(msg, "TASK WARNINGS"):
			j.Ended, cur = true, -1
		}
	}
	// Place the wall-clock times: their zone is the node's, unknown, but
	// the first of them is within seconds of the task's start.
	if hasAny {
		off := int64(math.Round(float64(first-taskStart)/900)) * 900
		if off < -maxOffset || off > maxOffset {
			for r := range walls {
				*r.field(&j) = 0 // not this task's times
			}
		} else {
			for r := range walls {
				*r.field(&j) -= off
			}
		}
	}
	return j, nil
}

// wallRef names a guest's Start or End field.
type wallRef struct {
	guest int
	end   bool
}

func (r wallRef) field(j *JobLog) *int64 {
	if r.end {
		return &j.Guests[r.guest].End
	}
	return &j.Guests[r.guest].Start
}

// stripStamp removes the "YYYY-MM-DD HH:MM:SS " prefix of vzdump's own
// log files (the task log has none).
func stripStamp(line string) string {
	if len(line) > len(wallLayout)+1 && line[4] == '-' && line[len(wallLayout)] == ' ' {
		if _, err := time.Parse(wallLayout, line[:len(wallLayout)]); err == nil {
			return line[len(wallLayout)+1:]
		}
	}
	return line
}

// optionValue returns the value of --name in a logged command line
// ("--storage pbs-1" or "--storage=pbs-1"), or "".
func optionValue(cmd, name string) string {
	f := strings.Fields(cmd)
	for i, w := range f {
		if w == name && i+1 < len(f) {
			return strings.Trim(f[i+1], "'\"")
		}
		if v, ok := strings.CutPrefix(w, name+"="); ok {
			return strings.Trim(v, "'\"")
		}
	}
	return ""
}

// validVMID reports whether s is a PVE vmid (100 to 999999999; the log
// prints it as written in the config, so lower ones are accepted too).
func validVMID(s string) bool {
	if s == "" || len(s) > 9 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseDuration reads "(HH:MM:SS)" loosely: more may follow inside the
// parentheses, and the hours may have more digits.
func parseDuration(s string) (int64, bool) {
	s = strings.TrimPrefix(s, "(")
	if i := strings.IndexAny(s, ") ,"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, false
	}
	var secs int64
	for _, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil || v < 0 || v > 1e6 {
			return 0, false
		}
		secs = secs*60 + v
	}
	return secs, true
}
