package task

import (
	"strings"
)

// Task is one task of a remote: its id and, once finished, its end time and
// exit status. The UPID carries node, type, id, user and start time.
type Task struct {
	Remote  string // remote id from the configuration
	UPID    UPID
	EndTime int64  // Unix seconds; 0 while the task runs
	Status  string // exit status ("OK", "WARNINGS: 2", an error message); "" while running
}

// Running reports whether the task has not finished. Running state comes from
// the missing end time, never from the status string (PVE says "RUNNING").
func (t Task) Running() bool { return t.EndTime == 0 }

// RemoteUPID returns the remote-qualified id, e.g. "pve:east!UPID:...".
func (t Task) RemoteUPID() RemoteUPID { return RemoteUPID{Remote: t.Remote, UPID: t.UPID} }

// Class classifies the exit status; see ClassifyStatus.
func (t Task) Class() StatusClass { return ClassifyStatus(t.Status) }

// Compare orders tasks the way every list is sorted: newest start time
// first, then by UPID text ascending, then by remote. It returns a negative
// number when a sorts before b.
func Compare(a, b Task) int {
	if a.UPID.StartTime != b.UPID.StartTime {
		if a.UPID.StartTime > b.UPID.StartTime {
			return -1
		}
		return 1
	}
	if c := strings.Compare(a.UPID.String(), b.UPID.String()); c != 0 {
		return c
	}
	return strings.Compare(a.Remote, b.Remote)
}

// StatusClass is the class of an exit status, as Proxmox Datacenter Manager
// computes it (TaskStateType).
type StatusClass uint8

const (
	// StatusOK is the status "OK".
	StatusOK StatusClass = iota
	// StatusWarning is a status starting with "WARNINGS: ".
	StatusWarning
	// StatusError is any other non-empty status.
	StatusError
	// StatusUnknown is an empty status or "unknown".
	StatusUnknown
)

var classNames = [...]string{"ok", "warning", "error", "unknown"}

// String returns "ok", "warning", "error" or "unknown".
func (c StatusClass) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "invalid"
}

// ParseStatusClass parses "ok", "warning", "error" or "unknown",
// case-insensitively as PVE does.
func ParseStatusClass(s string) (StatusClass, bool) {
	for i, n := range classNames {
		if strings.EqualFold(s, n) {
			return StatusClass(i), true
		}
	}
	return 0, false
}

// ClassifyStatus classifies an exit status like PDM's
// TaskStateType::new_from_str: "" and "unknown" are unknown, "OK" is ok, a
// "WARNINGS: " prefix is a warning, anything else is an error.
func ClassifyStatus(s string) StatusClass {
	switch {
	case s == "" || s == "unknown":
		return StatusUnknown
	case s == "OK":
		return StatusOK
	case strings.HasPrefix(s, "WARNINGS: "):
		return StatusWarning
	}
	return StatusError
}

// StatusSet is a set of status classes; the zero value is the empty set.
type StatusSet uint8

// Add returns the set with c added.
func (s StatusSet) Add(c StatusClass) StatusSet { return s | 1<<c }

// Has reports whether c is in the set.
func (s StatusSet) Has(c StatusClass) bool { return s&(1<<c) != 0 }

// Empty reports whether the set has no classes.
func (s StatusSet) Empty() bool { return s == 0 }
