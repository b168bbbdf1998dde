package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/taskfleet/taskfleet/cache"
)

// stateVersion is the format of the delivery state file.
const stateVersion = 1

// maxStateFile bounds what is read of a state file: an entry takes about
// 100 bytes, so it holds some 600,000 delivered tasks (a week of failures
// of a large fleet is a few thousand).
const maxStateFile = 64 << 20

// deliveryState is what a target delivered, as stored in
// <cache_dir>/notify/<target>.json. Owned by the target's notifier.
type deliveryState struct {
	Version int `json:"version"`
	// Since is when the target was first started (Unix seconds): tasks
	// that ended before it are not notified.
	Since int64 `json:"since"`
	// Delivered maps the remote-qualified UPID of each delivered task to
	// its end time (for forgetting it).
	Delivered map[string]int64 `json:"delivered"`
	// Stale maps each guest announced as stale (remote/vmid) to the time
	// of its last good backup then (Unix seconds, 0: never): it is
	// announced again only after another good backup.
	Stale map[string]int64 `json:"stale"`

	created bool // loadState found no file: this state is not on disk yet
}

// StateError is a delivery state file that is corrupt: not the JSON of
// this version, or larger than any state file.
type StateError struct {
	File string
	Err  error
}

func (e *StateError) Error() string { return fmt.Sprintf("notify state %s: %v", e.File, e.Err) }
func (e *StateError) Unwrap() error { return e.Err }

// stateFile returns the state file of a target.
func stateFile(cacheDir, target string) string {
	return filepath.Join(cacheDir, "notify", target+".json")
}

// loadState reads a target's state; a missing file is a new state
// (created) that starts at now. A corrupt file is a *StateError; a file
// that cannot be read is another error.
func loadState(name string, now time.Time) (*deliveryState, error) {
	fresh := &deliveryState{Version: stateVersion, Since: now.Unix(), Delivered: map[string]int64{}, Stale: map[string]int64{}, created: true}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return fresh, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read notify state: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err != nil {
		return nil, fmt.Errorf("read notify state %s: %w", name, err)
	}
	if len(data) > maxStateFile {
		return nil, &StateError{File: name, Err: fmt.Errorf("larger than %d bytes", maxStateFile)}
	}
	var s deliveryState
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, &StateError{File: name, Err: fmt.Errorf("decode: %w", err)}
	}
	if s.Version != stateVersion {
		return nil, &StateError{File: name, Err: fmt.Errorf("version %d, want %d", s.Version, stateVersion)}
	}
	if s.Since <= 0 {
		return nil, &StateError{File: name, Err: errors.New("no since")}
	}
	if s.Delivered == nil {
		s.Delivered = map[string]int64{}
	}
	if s.Stale == nil {
		s.Stale = map[string]int64{}
	}
	return &s, nil
}

// save writes the state crash-safely.
func (s *deliveryState) save(name string) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
		return fmt.Errorf("save notify state: %w", err)
	}
	err := cache.WriteFileAtomic(name, func(w io.Writer) error { return json.NewEncoder(w).Encode(s) })
	if err != nil {
		return fmt.Errorf("save notify state: %w", err)
	}
	return nil
}

// forget drops the delivered tasks that ended before horizon.
func (s *deliveryState) forget(horizon int64) {
	for k, end := range s.Delivered {
		if end < horizon {
			delete(s.Delivered, k)
		}
	}
}
