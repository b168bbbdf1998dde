package cache

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/taskfleet/taskfleet/task"
)

// validateTask checks what the cache relies on: the remote id, the task's
// remote, and a UPID whose text parses back to the same fields (so that
// the journal record of an acknowledged batch can always be replayed). A
// UPID from task.ParseUPID always passes.
func validateTask(remote string, t *task.Task) error {
	if err := task.ValidateRemoteID(remote); err != nil {
		return err
	}
	if t.Remote != remote {
		return fmt.Errorf("task %s of remote %q in a batch of %q", t.UPID, t.Remote, remote)
	}
	if err := checkUPID(&t.UPID); err != nil {
		return fmt.Errorf("task of remote %q: %w", remote, err)
	}
	return nil
}

// checkUPID checks that a canonical UPID's fields follow the grammar
// task.ParseUPID accepts (a non-canonical one was parsed, so it does).
func checkUPID(u *task.UPID) error {
	if !u.Canonical() {
		return nil
	}
	pbs := u.Kind == task.PBS
	switch {
	case u.Kind != task.PVE && !pbs:
		return errors.New("upid has no kind")
	case !validNode(u.Node):
		return fmt.Errorf("upid %s: node %q: want letters, digits and inner '-'", u, u.Node)
	case u.StartTime < 0 || u.StartTime > 0xFFFFFFFF:
		return fmt.Errorf("upid %s: start time %d out of range", u, u.StartTime)
	case u.PStart > 0xFFFFFFFFF:
		return fmt.Errorf("upid %s: pstart %d out of range", u, u.PStart)
	case !pbs && u.TaskID != 0:
		return fmt.Errorf("upid %s: PVE upid with a task id", u)
	case !validField(u.Type, false, pbs) || !validField(u.User, false, pbs):
		return fmt.Errorf("upid %s: type or user empty or with ':', space or '/'", u)
	case pbs && !utf8.ValidString(u.ID), !pbs && !validField(u.ID, true, false):
		return fmt.Errorf("upid %s: bad worker id %q", u, u.ID)
	}
	return nil
}

func validNode(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(n)-1) {
			return false
		}
	}
	return true
}

func validField(v string, emptyOK, slashOK bool) bool {
	if v == "" {
		return emptyOK
	}
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r == ':' || unicode.IsSpace(r) || r == '/' && !slashOK {
			return false
		}
	}
	return true
}
