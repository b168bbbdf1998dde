package actors

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taskfleet/taskfleet/backups"
	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/internal/retry"
	"github.com/taskfleet/taskfleet/messages"
	"github.com/taskfleet/taskfleet/proxmox"
	"github.com/taskfleet/taskfleet/task"
)

// Bounds of the backup keeper.
const (
	// MaxBackupLogsPerRefresh bounds the multi-guest vzdump logs fetched
	// for one remote after one of its refreshes; the rest wait for the
	// next refresh.
	MaxBackupLogsPerRefresh = 8
	// MaxBackupJobLogs bounds the parsed logs kept per remote; beyond it
	// the oldest are dropped and counted
	// (taskfleet_backup_job_logs_dropped_total).
	MaxBackupJobLogs = 20_000
	// maxLogFailuresPerRound ends a remote's round after this many
	// failed log fetches (a node that hangs would hold the keeper for a
	// request timeout each); the next refresh goes on.
	maxLogFailuresPerRound = 2
	// deferRounds is how many rounds the keeper leaves a failed job's log
	// to the task-log keeper (which fetches every failed task's log)
	// before fetching it itself.
	deferRounds = 3
	// backupPublishGap is the least time between two rounds of the
	// keeper, so between two publishes of the overview: about 10,000
	// remotes' parts are sorted and assembled (a few ms) at most once a
	// second however often remotes refresh.
	backupPublishGap = time.Second
)

// backupKeeper owns the backup overview (package backups): each PVE
// remote's guest list, the parsed logs of its multi-guest vzdump jobs, and
// the overview built from them and the cache's tasks, published as an
// immutable *backups.Overview that readers load without waiting.
//
// Pollers post a note after each refresh (with the guest list when one
// was fetched: guestlist.go) to its inbox, a map by remote with a wake-up
// channel of one: posting never blocks and a remote's notes coalesce, so nothing is
// dropped and the inbox is bounded by the number of remotes. For the
// remote of a note, the keeper fetches the logs of finished multi-guest
// vzdump jobs it has not parsed (at most MaxBackupLogsPerRefresh, newest
// first, one at a time through the remote's poller, so through its
// connection budget, in the poller's background slot: never one of the
// API's), keeps what it parsed in <cache_dir>/backups/
// <remote>.json (cache.WriteFileAtomic) so that a log is fetched once,
// also across restarts, and rebuilds the remote's part of the overview.
//
// Stop path: stop cancels its context and waits; the goroutine ends after
// the request in flight (which ends with the context). It also ends when
// the tree has ended (a host's strategy stopped it without Stop).
type backupKeeper struct {
	s   *Service
	dir string // "" when the parsed logs are not kept (no cache directory)

	mu    sync.Mutex
	inbox map[string]*backupNote
	wake  chan struct{}

	overview atomic.Pointer[backups.Overview]

	// Owned by the keeper's goroutine.
	state     map[string]*backupState
	parts     map[string]backups.Part
	published time.Time // of the last publish

	stop     func()
	restarts atomic.Int64        // panics survived
	hook     func(remote string) // tests: called before each remote's round
}

// backupNote is what a poller tells the keeper after a refresh.
type backupNote struct {
	guests    []backups.GuestInfo // the guest list, when hasGuests
	hasGuests bool
}

// backupState is what the keeper knows of one remote, as kept on disk.
type backupState struct {
	Version  int                           `json:"version"`
	Remote   string                        `json:"remote"`
	GuestsAt int64                         `json:"guests_at,omitempty"` // when the guest list last changed; 0: none yet
	Guests   []backups.GuestInfo           `json:"guests"`
	Logs     map[task.UPID]*backups.JobLog `json:"logs"` // parsed logs of multi-guest vzdump jobs, by UPID (as text in the file)

	deferred map[task.UPID]int // failed jobs left to the task-log keeper: rounds so far
}

const backupStateVersion = 1

func newBackupKeeper(s *Service, cacheDir string) *backupKeeper {
	k := &backupKeeper{s: s, inbox: map[string]*backupNote{}, wake: make(chan struct{}, 1),
		state: map[string]*backupState{}, parts: map[string]backups.Part{}}
	if cacheDir != "" {
		k.dir = filepath.Join(cacheDir, "backups")
	}
	return k
}

// refreshed posts a remote's refresh to the keeper; guests is the guest
// list when the refresh fetched it, guestsErr why it (or some of its
// items) could not be. It never blocks. Nil-safe.
func (k *backupKeeper) refreshed(remote string, guests []backups.GuestInfo, hasGuests bool, guestsErr error) {
	if k == nil {
		return
	}
	if guestsErr != nil {
		k.s.env.Log.Debug().Err(guestsErr).Str("remote", remote).Msg("guest list incomplete")
	}
	k.mu.Lock()
	n := k.inbox[remote]
	if n == nil {
		n = &backupNote{}
		k.inbox[remote] = n
	}
	if hasGuests {
		n.guests, n.hasGuests = guests, true
	}
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// start runs the keeper's goroutine.
func (k *backupKeeper) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	k.stop = func() { cancel(); <-done }
	go k.run(ctx, done)
}

func (k *backupKeeper) run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	select {
	case <-k.s.env.life.loaded:
	case <-ctx.Done():
		return
	case <-k.s.env.life.done:
		return
	}
	// A panic (a bug, or a log no parser foresaw) restarts the keeper
	// after a growing delay, from what it kept on disk; the overview it
	// published last stays readable meanwhile.
	// The delay follows the supervisor's rule (strategy.go): base·2^(n-1)
	// with 0.5–1.5× jitter up to restartMax; n resets after a quiet run of
	// ten ceilings.
	env := k.s.env
	failures := 0
	for {
		began := time.Now()
		if k.serve(ctx) {
			return
		}
		k.restarts.Add(1)
		if time.Since(began) > 10*env.restartMax {
			failures = 0
		}
		failures++
		delay := retry.Delay(env.restartBase, env.restartMax, failures)
		env.Log.Error().Int("failures", failures).Int64("restart_in_ms", delay.Milliseconds()).Msg("backup keeper failed; restarting")
		select {
		case <-ctx.Done():
			return
		case <-k.s.env.life.done:
			return
		case <-time.After(delay):
		}
	}
}

// serve runs the keeper until it is stopped (true) or panics (false).
func (k *backupKeeper) serve(ctx context.Context) (stopped bool) {
	defer func() {
		if v := recover(); v != nil {
			k.s.env.Log.Error().Interface("panic", v).Msg("backup keeper panicked")
			stopped = false
		}
	}()
	// The overview of every remote from what was kept, before any refresh
	// (after a panic: from disk again, not from state the panic left).
	k.state, k.parts = map[string]*backupState{}, map[string]backups.Part{}
	for _, r := range k.s.env.config().Remotes {
		k.load(r.ID)
		if tasks, ok := k.finished(r.ID, r.Type); ok {
			k.rebuild(r.ID, r.Type, tasks)
		}
	}
	k.publish()
	for {
		select {
		case <-ctx.Done():
			return true
		case <-k.s.env.life.done:
			return true // the tree ended without Stop (a host stopped it)
		case <-k.wake:
		}
		// At most one round of notes and one publish per
		// backupPublishGap: a fleet's notes coalesce meanwhile.
		if wait := backupPublishGap - time.Since(k.published); wait > 0 {
			select {
			case <-ctx.Done():
				return true
			case <-k.s.env.life.done:
				return true
			case <-time.After(wait):
			}
		}
		k.mu.Lock()
		notes := k.inbox
		k.inbox = map[string]*backupNote{}
		k.mu.Unlock()
		for _, remote := range slices.Sorted(maps.Keys(notes)) {
			if ctx.Err() != nil {
				return true
			}
			r, ok := k.s.env.remote(remote)
			if !ok {
				continue
			}
			if k.hook != nil {
				k.hook(remote)
			}
			k.round(ctx, r.ID, r.Type, notes[remote])
		}
		k.forgetRemoved()
		k.publish()
	}
}

// round handles one remote's note: its guest list, its unparsed job logs,
// its part of the overview.
func (k *backupKeeper) round(ctx context.Context, remote string, kind task.Kind, n *backupNote) {
	st := k.load(remote)
	changed := false
	if n.hasGuests {
		// Written when the list changed (or is the first): GuestsAt is
		// the time of the list as last written.
		changed = st.GuestsAt == 0 || !slices.Equal(st.Guests, n.guests)
		if changed {
			st.Guests, st.GuestsAt = n.guests, time.Now().Unix()
		}
	}
	tasks, ok := k.finished(remote, kind)
	if ok && kind == task.PVE {
		changed = k.fetchLogs(ctx, remote, st, tasks) || changed
	}
	if changed {
		k.save(st)
	}
	if ok {
		k.rebuild(remote, kind, tasks)
	}
}

// finished returns the remote's finished tasks the overview reads, from
// the latest snapshot, each type newest first: vzdump on PVE; guests'
// backups and the datastore jobs on PBS (backups.PBSWorkerTypes). False
// when there is no snapshot yet.
func (k *backupKeeper) finished(remote string, kind task.Kind) ([]task.Task, bool) {
	snap := k.s.latest.Load()
	if snap == nil {
		return nil, false
	}
	types := []string{"vzdump"}
	if kind == task.PBS {
		types = backups.PBSWorkerTypes()
	}
	var out []task.Task
	for _, typ := range types {
		_, tasks := snap.Stream(task.Filter{Remote: remote, TypeFilter: typ}) // a substring: "backup" is also in "tape-backup"
		for t := range tasks {
			if t.UPID.Type == typ && !t.Running() {
				out = append(out, t)
			}
		}
	}
	return out, true
}

// fetchLogs fetches and parses up to MaxBackupLogsPerRefresh logs of the
// remote's finished multi-guest vzdump jobs not parsed yet, newest first;
// tasks are the remote's finished vzdump tasks (finished), newest first.
// It reports whether it parsed any.
func (k *backupKeeper) fetchLogs(ctx context.Context, remote string, st *backupState, tasks []task.Task) bool {
	var todo []task.Task
	for _, t := range tasks {
		if t.UPID.ID == "" && st.Logs[t.UPID] == nil {
			todo = append(todo, t)
		}
	}
	env := k.s.env
	failedKept := env.Events != nil && env.Logs != nil // keepLogs fetches failed tasks' logs
	parsed, fetched, failed := false, 0, 0
	for _, t := range todo {
		if fetched >= MaxBackupLogsPerRefresh || failed >= maxLogFailuresPerRound || ctx.Err() != nil {
			break
		}
		var lines []string
		if failedKept && t.Class() == task.StatusError {
			kept, ok, err := env.Logs.Get(remote, t.UPID)
			switch {
			case ok:
				lines = kept
			case err == nil && st.deferred[t.UPID] < deferRounds:
				st.deferred[t.UPID]++ // the task-log keeper is at it
				continue
			}
		}
		if lines == nil {
			fetched++
			rctx, cancel := context.WithTimeout(ctx, 2*env.config().Polling.RequestTimeout)
			var err error
			lines, err = k.s.wholeLog(rctx, remote, t.UPID, true)
			cancel()
			if errors.Is(err, ErrLogBusy) {
				break // its previous fetch outlived our request; the next refresh goes on
			}
			if err != nil {
				failed++
				if ctx.Err() == nil {
					env.Log.Debug().Err(err).Str("remote", remote).Str("upid", t.UPID.String()).Msg("backup job log not fetched: tried again after the next refresh")
				}
				continue
			}
		}
		j, err := backups.ParseVzdumpLog(lines, t.UPID.StartTime)
		if err != nil {
			j = backups.JobLog{Unavailable: true} // an empty log: nothing to learn, never to ask again
		}
		if j.Malformed > 0 {
			env.Log.Warn().Str("remote", remote).Str("upid", t.UPID.String()).Int("malformed", j.Malformed).
				Str("first", j.LineErrors[0].Error()).Msg("backup job log has unreadable lines")
		}
		st.Logs[t.UPID] = &j
		delete(st.deferred, t.UPID)
		parsed = true
	}
	return parsed
}

// rebuild recomputes a remote's part of the overview from its finished
// tasks (finished).
func (k *backupKeeper) rebuild(remote string, kind task.Kind, tasks []task.Task) {
	st := k.load(remote)
	in := backups.Input{Remote: remote, Kind: kind, Logs: st.Logs, Tasks: tasks}
	if st.GuestsAt != 0 {
		in.Guests = st.Guests
	}
	k.parts[remote] = backups.Build(in)
}

// forgetRemoved drops the parts and state of remotes no longer configured
// (their files stay until the remote is added again or the cache dir is
// cleaned: they are small).
func (k *backupKeeper) forgetRemoved() {
	for id := range k.parts {
		if _, ok := k.s.env.remote(id); !ok {
			delete(k.parts, id)
			delete(k.state, id)
		}
	}
}

func (k *backupKeeper) publish() {
	parts := slices.Collect(maps.Values(k.parts))
	k.published = time.Now()
	k.overview.Store(backups.New(k.published, parts...))
}

// path is where a remote's state is kept.
func (k *backupKeeper) path(remote string) string { return filepath.Join(k.dir, remote+".json") }

// load returns a remote's state, reading it from disk the first time. An
// unreadable file is logged and replaced: its logs are fetched again.
func (k *backupKeeper) load(remote string) *backupState {
	if st := k.state[remote]; st != nil {
		return st
	}
	st := &backupState{Version: backupStateVersion, Remote: remote}
	if k.dir != "" {
		if err := st.read(k.path(remote), k.floor()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			k.s.env.Log.Warn().Err(err).Str("remote", remote).Msg("kept backup job logs unreadable: fetching them again")
			st = &backupState{Version: backupStateVersion, Remote: remote}
		}
	}
	st.deferred = map[task.UPID]int{}
	if st.Logs == nil {
		st.Logs = map[task.UPID]*backups.JobLog{}
	}
	k.state[remote] = st
	return st
}

// floor is the start of the retention: older logs are not kept.
func (k *backupKeeper) floor() int64 {
	return time.Now().Add(-time.Duration(k.s.env.config().Polling.RetentionDays) * 24 * time.Hour).Unix()
}

// read loads a state file, dropping logs older than floor.
func (st *backupState) read(name string, floor int64) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	var f backupState
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if f.Version != backupStateVersion || f.Remote != st.Remote {
		return fmt.Errorf("read %s: version %d of remote %q, want version %d of %q", name, f.Version, f.Remote, backupStateVersion, st.Remote)
	}
	for u, j := range f.Logs {
		if u.Kind != task.PVE || j == nil {
			return fmt.Errorf("read %s: log of %q: not a PVE UPID or no log", name, u.String())
		}
		if u.StartTime < floor {
			delete(f.Logs, u)
		}
	}
	st.Guests, st.GuestsAt, st.Logs = f.Guests, f.GuestsAt, f.Logs
	return nil
}

// save writes a remote's state (crash-safe), dropping logs beyond the
// retention and beyond MaxBackupJobLogs (oldest first).
func (k *backupKeeper) save(st *backupState) {
	if k.dir == "" {
		return
	}
	floor := k.floor()
	ups := slices.SortedFunc(maps.Keys(st.Logs), func(a, b task.UPID) int { return cmp.Compare(b.StartTime, a.StartTime) })
	dropped := 0
	for i, u := range ups {
		if u.StartTime < floor || i >= MaxBackupJobLogs {
			if u.StartTime >= floor {
				dropped++
			}
			delete(st.Logs, u)
		}
	}
	k.s.env.Metrics.BackupJobLogsDropped(st.Remote, dropped)
	err := os.MkdirAll(k.dir, 0o750)
	if err == nil {
		err = cache.WriteFileAtomic(k.path(st.Remote), func(w io.Writer) error { return json.NewEncoder(w).Encode(st) })
	}
	if err != nil {
		k.s.env.Log.Warn().Err(err).Str("remote", st.Remote).Msg("backup job logs not kept: they are fetched again after a restart")
	}
}

// Backups returns the latest backup overview: per guest its last backup
// and last good one, per PBS datastore its jobs' last runs. It never
// waits; it is nil until the cache has been loaded. The overview is
// immutable and shared: do not modify what its methods return.
func (s *Service) Backups() *backups.Overview {
	if s.backups == nil {
		return nil
	}
	return s.backups.overview.Load()
}

// stopBackups stops the backup keeper and waits for it.
func (s *Service) stopBackups() {
	if s.backups != nil && s.backups.stop != nil {
		s.backups.stop()
	}
}

// guestLister is the part of the client the guest list needs
// (*proxmox.Client).
type guestLister interface {
	Guests(ctx context.Context) (proxmox.GuestList, error)
}

// fetchGuests asks a PVE cluster for its guest list when the poller
// decided so (a full refresh, and the list may have changed:
// guestlist.go): one request per cluster. A failure is recorded in
// res.GuestsErr only: the overview keeps the last list.
func (j *fetchJob) fetchGuests(ctx context.Context, res *messages.FetchFinished) {
	gl, ok := j.client.(guestLister)
	if !j.guests || !ok {
		return
	}
	list, err := gl.Guests(ctx)
	res.Requests++
	if err != nil {
		res.GuestsErr = err
		return
	}
	res.Guests, res.GuestsFetched = make([]backups.GuestInfo, len(list.Guests)), true
	for i, g := range list.Guests {
		res.Guests[i] = backups.GuestInfo(g) // the same fields
	}
	if list.Omitted > 0 {
		res.GuestsErr = fmt.Errorf("list guests: %d malformed guest items skipped, the first: %s", list.Omitted, list.Skipped[0])
	}
}
