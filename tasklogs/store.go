// Package tasklogs keeps the logs of failed tasks in the cache directory,
// so that a failure's log can be read after the remote has rotated it
// away.
//
// Layout: <dir>/<period>/<remote>/<name>.json, where <period> is the
// Unix start of the task's archive period (the cache's rotation) and
// <name> a hash of the UPID. A file is JSON: {"remote", "upid", "lines"}.
// Files are written with the cache's crash-safe protocol
// (cache.WriteFileAtomic). A period's directory is deleted when the
// period leaves the retention, as its archive file is; beyond MaxBytes in
// all, the oldest logs are deleted first.
//
// A Store is safe for concurrent use: Put and Prune are called by one
// goroutine (the keeper), Get by any; a Get racing a deletion finds
// nothing, and the caller asks the remote.
package tasklogs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/task"
)

// Defaults and bounds.
const (
	DefaultMaxBytes = 64 << 20 // all kept logs
	MaxLogBytes     = 1 << 20  // one log; longer ones keep their first lines and a note
	MaxLogLines     = 5000
)

// Options configure a Store.
type Options struct {
	Dir       string        // where the logs live (typically <cache_dir>/tasklogs)
	Rotation  time.Duration // archive period; default cache.DefaultRotation
	Retention int           // archive periods kept (as the cache's)
	MaxBytes  int64         // default DefaultMaxBytes
	Now       func() time.Time
	Logger    zerolog.Logger
}

// Store is the kept logs.
type Store struct {
	opts Options
	rot  int64
}

// file is the JSON form of a kept log.
type file struct {
	Remote string   `json:"remote"`
	UPID   string   `json:"upid"`
	Lines  []string `json:"lines"`
}

// Open returns the store in opts.Dir, creating it.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("open task logs: no directory")
	}
	if opts.Rotation == 0 {
		opts.Rotation = cache.DefaultRotation
	}
	if opts.Rotation < time.Second || opts.Retention < 1 {
		return nil, fmt.Errorf("open task logs: rotation %v, retention %d: want at least 1s and 1", opts.Rotation, opts.Retention)
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("open task logs: %w", err)
	}
	return &Store{opts: opts, rot: int64(opts.Rotation / time.Second)}, nil
}

func (s *Store) period(t int64) int64 {
	p := t - t%s.rot
	if t%s.rot < 0 {
		p -= s.rot
	}
	return p
}

// path is where the log of upid of remote is kept.
func (s *Store) path(remote string, upid task.UPID) string {
	sum := sha256.Sum256([]byte(upid.String()))
	return filepath.Join(s.opts.Dir, strconv.FormatInt(s.period(upid.StartTime), 10), remote, hex.EncodeToString(sum[:16])+".json")
}

// Put keeps a task's log (its first MaxLogLines lines and MaxLogBytes),
// then prunes.
func (s *Store) Put(remote string, upid task.UPID, lines []string) error {
	if err := task.ValidateRemoteID(remote); err != nil {
		return fmt.Errorf("keep task log: %w", err)
	}
	if upid.StartTime < s.oldest() {
		return nil // its period has left the retention already
	}
	kept, size := lines, 0
	for i, l := range lines {
		size += len(l) + 8
		if i == MaxLogLines || size > MaxLogBytes {
			kept = append(slices.Clip(lines[:i]), fmt.Sprintf("[taskfleet: %d more lines not kept]", len(lines)-i))
			break
		}
	}
	name := s.path(remote, upid)
	if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
		return fmt.Errorf("keep task log: %w", err)
	}
	err := cache.WriteFileAtomic(name, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(file{Remote: remote, UPID: upid.String(), Lines: kept})
	})
	if err != nil {
		return fmt.Errorf("keep task log: %w", err)
	}
	return s.Prune()
}

// Get returns a kept log; ok is false when there is none. A file that is
// not the log it should be is an error (and ok is false).
func (s *Store) Get(remote string, upid task.UPID) (lines []string, ok bool, err error) {
	if task.ValidateRemoteID(remote) != nil {
		return nil, false, nil
	}
	name := s.path(remote, upid)
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read kept task log: %w", err)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil || f.Remote != remote || f.UPID != upid.String() {
		return nil, false, fmt.Errorf("kept task log %s: not the log of %s of %s (damaged)", name, upid, remote)
	}
	return f.Lines, true, nil
}

// oldest is the start of the oldest period kept.
func (s *Store) oldest() int64 {
	return s.period(s.opts.Now().Unix()) - int64(s.opts.Retention-1)*s.rot
}

// Prune deletes the periods that left the retention, then the oldest logs
// while the logs take more than MaxBytes.
func (s *Store) Prune() error {
	periods, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("prune task logs: %w", err)
	}
	type kept struct {
		path    string
		size    int64
		period  int64
		modTime time.Time
	}
	var all []kept
	var total int64
	oldest := s.oldest()
	for _, pd := range periods {
		p, err := strconv.ParseInt(pd.Name(), 10, 64)
		if err != nil || !pd.IsDir() {
			continue // not ours
		}
		dir := filepath.Join(s.opts.Dir, pd.Name())
		if p < oldest {
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("prune task logs: %w", err)
			}
			s.opts.Logger.Info().Str("period", time.Unix(p, 0).UTC().Format(time.DateOnly)).Msg("task logs of an expired period deleted")
			continue
		}
		err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			all = append(all, kept{path: path, size: info.Size(), period: p, modTime: info.ModTime()})
			total += info.Size()
			return nil
		})
		if err != nil {
			return fmt.Errorf("prune task logs: %w", err)
		}
	}
	if total <= s.opts.MaxBytes {
		return nil
	}
	slices.SortFunc(all, func(a, b kept) int {
		if a.period != b.period {
			return int(a.period - b.period)
		}
		return a.modTime.Compare(b.modTime)
	})
	removed := 0
	for _, k := range all {
		if total <= s.opts.MaxBytes {
			break
		}
		if err := os.Remove(k.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("prune task logs: %w", err)
		}
		total -= k.size
		removed++
	}
	s.opts.Logger.Info().Int("removed", removed).Int64("max_bytes", s.opts.MaxBytes).Msg("task logs pruned")
	return nil
}
