package cache

import (
	"fmt"

	"github.com/taskfleet/taskfleet/task"
)

// validateTask checks what the cache relies on: the remote id, the task's
// remote, and a UPID whose text parses back to the same fields (so that
// the journal record of an acknowledged batch can always be replayed):
// task.UPID.Validate.
func validateTask(remote string, t *task.Task) error {
	if err := task.ValidateRemoteID(remote); err != nil {
		return err
	}
	if t.Remote != remote {
		return fmt.Errorf("task %s of remote %q in a batch of %q", t.UPID, t.Remote, remote)
	}
	if err := t.UPID.Validate(); err != nil {
		return fmt.Errorf("task of remote %q: %w", remote, err)
	}
	return nil
}

// taskError returns the error of a task that failed the checks of
// interner.checkRec: validateTask's.
func taskError(remote string, t *task.Task) error {
	if err := validateTask(remote, t); err != nil {
		return err
	}
	return fmt.Errorf("task %s of remote %q: invalid", t.UPID, remote) // checkRec and validateTask disagree
}
