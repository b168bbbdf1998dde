package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet"
	"github.com/taskfleet/taskfleet/actors"
	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/events"
	"github.com/taskfleet/taskfleet/task"
)

// Deadlines of the backend's requests to the service, on top of the
// request's context.
const (
	trackTimeout  = 30 * time.Second // the writer answers once the tracking is durable
	reloadTimeout = time.Minute      // pollers of changed remotes stop and restart
)

// errNotStarted is returned while the service is starting (its cache is
// loading); it wraps api.ErrNotReady, so the API answers 503 with
// Retry-After.
var errNotStarted error = notStartedError{}

type notStartedError struct{}

func (notStartedError) Error() string { return "service not started yet: the cache is loading" }

func (notStartedError) Is(target error) bool { return target == api.ErrNotReady }

// notReady returns err wrapping api.ErrNotReady when it is the service's
// actors.ErrNotReady (the cache is still loading), else err.
func notReady(err error) error {
	if errors.Is(err, actors.ErrNotReady) && !errors.Is(err, api.ErrNotReady) {
		return fmt.Errorf("%w: %w", api.ErrNotReady, err)
	}
	return err
}

// backend adapts a *taskfleet.Service to api.Backend. It exists before the
// service does, so that the HTTP API can answer the probes while the cache
// loads: until setService, queries fail and Ready is false.
//
// Reload re-reads the configuration file; reloads are serialised, and an
// invalid file leaves everything as it was.
type backend struct {
	path   string   // the configuration file
	listen net.Addr // where the API listens: a reload may not drop its tokens then
	log    zerolog.Logger
	// onReload is called with each configuration that was applied (the
	// daemon swaps the API's tokens).
	onReload func(*config.Config)
	// reloadCert re-reads the API's configured certificate at every
	// reload (SIGHUP and POST /api2/json/reload alike); nil: none.
	reloadCert func()

	events *events.Hub // the service's changes (the event stream); nil: none

	svc atomic.Pointer[taskfleet.Service]
	cfg atomic.Pointer[runningConfig]

	reloadMu sync.Mutex // serialises Reload
}

var _ api.Backend = (*backend)(nil)

// newBackend returns the backend of a daemon running cfg, read from path.
func newBackend(path string, cfg *config.Config, listen net.Addr, log zerolog.Logger) *backend {
	b := &backend{path: path, listen: listen, log: log, onReload: func(*config.Config) {}}
	b.cfg.Store(newRunningConfig(cfg))
	return b
}

// runningConfig is the configuration the daemon runs, with its remotes by
// id: the API looks a remote up on most requests, and a fleet has
// thousands.
type runningConfig struct {
	cfg     *config.Config
	remotes map[string]int // index into cfg.Remotes
}

func newRunningConfig(cfg *config.Config) *runningConfig {
	rc := &runningConfig{cfg: cfg, remotes: make(map[string]int, len(cfg.Remotes))}
	for i, r := range cfg.Remotes {
		if _, dup := rc.remotes[r.ID]; !dup { // validation refuses duplicates; Config.Remote takes the first
			rc.remotes[r.ID] = i
		}
	}
	return rc
}

// setService makes the started service answer the API.
func (b *backend) setService(s *taskfleet.Service) { b.svc.Store(s) }

// service returns the service, or nil while it starts.
func (b *backend) service() *taskfleet.Service { return b.svc.Load() }

// config returns the running configuration.
func (b *backend) config() *config.Config { return b.cfg.Load().cfg }

// remote returns the configured remote id.
func (b *backend) remote(id string) (config.Remote, bool) {
	rc := b.cfg.Load()
	i, ok := rc.remotes[id]
	if !ok {
		return config.Remote{}, false
	}
	return rc.cfg.Remotes[i], true
}

// Tasks implements api.Backend.
func (b *backend) Tasks(_ context.Context, f task.Filter) (task.Page, error) {
	s := b.service()
	if s == nil {
		return task.Page{}, errNotStarted
	}
	page, err := s.Tasks(f)
	return page, notReady(err)
}

// Statistics implements api.Backend.
func (b *backend) Statistics(_ context.Context, f task.Filter) (task.Statistics, error) {
	s := b.service()
	if s == nil {
		return task.Statistics{}, errNotStarted
	}
	st, err := s.Statistics(f)
	return st, notReady(err)
}

// Track implements api.Backend: it checks that the UPID is of the remote's
// kind (a PBS UPID cannot be a task of a PVE cluster) before asking the
// service.
func (b *backend) Track(ctx context.Context, remote string, upid task.UPID) error {
	s := b.service()
	if s == nil {
		return errNotStarted
	}
	r, ok := b.remote(remote)
	if !ok {
		return fmt.Errorf("%w '%s'", api.ErrUnknownRemote, remote)
	}
	if upid.Kind != r.Type {
		return fmt.Errorf("%w: remote '%s' is a %s remote and the upid a %s one", api.ErrInvalidTask, remote, r.Type, upid.Kind)
	}
	ctx, cancel := context.WithTimeout(ctx, trackTimeout)
	defer cancel()
	err := s.Track(ctx, remote, upid)
	switch {
	case errors.Is(err, actors.ErrUnknownRemote): // removed by a reload meanwhile
		return fmt.Errorf("%w '%s'", api.ErrUnknownRemote, remote)
	case errors.Is(err, actors.ErrInvalidTrack):
		// A node outside the cluster, a task in the remote's future, one
		// task too many: refused at once, never polled.
		return fmt.Errorf("%w: %v", api.ErrInvalidTask, err)
	}
	return err
}

// Untrack implements api.Backend.
func (b *backend) Untrack(ctx context.Context, remote string, upid task.UPID) error {
	s := b.service()
	if s == nil {
		return errNotStarted
	}
	if _, ok := b.remote(remote); !ok {
		return fmt.Errorf("%w '%s'", api.ErrUnknownRemote, remote)
	}
	ctx, cancel := context.WithTimeout(ctx, trackTimeout)
	defer cancel()
	err := s.Untrack(ctx, remote, upid)
	switch {
	case errors.Is(err, actors.ErrUnknownRemote): // removed by a reload meanwhile
		return fmt.Errorf("%w '%s'", api.ErrUnknownRemote, remote)
	case errors.Is(err, actors.ErrNotTracked):
		return fmt.Errorf("%w: %v", api.ErrNotTracked, err)
	}
	return err
}

// Refresh implements api.Backend.
func (b *backend) Refresh(ctx context.Context, wait bool, remotes ...string) ([]api.RefreshResult, error) {
	s := b.service()
	if s == nil {
		return nil, errNotStarted
	}
	for _, id := range remotes {
		if !s.HasRemote(id) {
			return nil, fmt.Errorf("%w '%s'", api.ErrUnknownRemote, id)
		}
	}
	res, err := s.Refresh(ctx, wait, remotes...)
	if errors.Is(err, actors.ErrUnknownRemote) { // removed by a reload meanwhile
		return nil, fmt.Errorf("%w: %v", api.ErrUnknownRemote, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]api.RefreshResult, len(res))
	for i, r := range res {
		out[i] = api.RefreshResult{Remote: r.Remote, Tasks: r.Tasks, Duration: r.Duration.Seconds()}
		if r.Err != nil {
			out[i].Error = r.Err.Error()
		}
	}
	return out, nil
}

// Remotes implements api.Backend: one status per configured remote, in
// the configuration's order. A remote whose poller has not published its
// health yet is "starting".
func (b *backend) Remotes(context.Context) []api.RemoteStatus {
	var health []actors.Health
	if s := b.service(); s != nil {
		health = s.Remotes()
	}
	byID := make(map[string]actors.Health, len(health))
	for _, h := range health {
		if h.Remote != "" {
			byID[h.Remote] = h
		}
	}
	cfg := b.config()
	out := make([]api.RemoteStatus, 0, len(cfg.Remotes))
	for _, r := range cfg.Remotes {
		h, ok := byID[r.ID]
		if !ok {
			h = actors.Health{Remote: r.ID, Kind: r.Type, State: actors.StateStarting}
		}
		out = append(out, remoteStatus(h))
	}
	return out
}

// remoteStatus converts a poller's health to the API's status.
func remoteStatus(h actors.Health) api.RemoteStatus {
	st := api.RemoteStatus{
		Remote:              h.Remote,
		Type:                h.Kind.String(),
		State:               h.State,
		LastSuccess:         unixOrZero(h.LastSuccess),
		LastError:           h.LastError,
		LastErrorTime:       unixOrZero(h.LastErrorAt),
		ConsecutiveFailures: h.ConsecutiveFailures,
		LastFetchDuration:   h.LastFetchDuration.Seconds(),
		Nodes:               h.Nodes,
		TasksFetched:        int(h.TasksFetched),
	}
	if st.State == "" {
		st.State = actors.StateStarting
	}
	for _, u := range h.Tracked {
		st.Tracked = append(st.Tracked, qualify(h.Remote, u))
	}
	for _, e := range h.TrackingEnded {
		st.TrackingEnded = append(st.TrackingEnded, api.TrackingEnd{UPID: qualify(h.Remote, e.UPID), Reason: e.Reason, Time: e.At.Unix()})
	}
	st.Settled, st.ClockSkew, st.ClockBehind = int(h.Settled), h.ClockSkew.Seconds(), h.ClockBehind
	st.ClockStep, st.ClockStepTime = h.ClockStep.Seconds(), unixOrZero(h.ClockStepAt)
	return st
}

// qualify turns a tracked task's native UPID into its remote UPID
// ("pve:REMOTE!UPID:..."); a text that does not parse is kept as it is.
func qualify(remote, upid string) string {
	u, err := task.ParseUPID(upid)
	if err != nil {
		return upid
	}
	return task.RemoteUPID{Remote: remote, UPID: u}.String()
}

// unixOrZero returns t as Unix seconds, 0 for the zero time ("never").
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// Ready implements api.Backend.
func (b *backend) Ready(context.Context) error {
	s := b.service()
	if s == nil {
		return errNotStarted
	}
	return s.NotReady()
}

// HasRemote implements api.Backend.
func (b *backend) HasRemote(_ context.Context, id string) bool {
	if s := b.service(); s != nil {
		return s.HasRemote(id)
	}
	_, ok := b.remote(id)
	return ok
}

// Reload implements api.Backend; SIGHUP calls it too. It loads the
// configuration file and applies it: remotes are added, removed and
// restarted, and the API's tokens replaced. An invalid file returns its
// *config.ValidationError and changes nothing. [polling] applies at once
// (a change of retention_days is refused, naming it); [server] takes effect
// on the next start (logged as a warning), except the TLS certificate files,
// which are re-read. Once the file is read, the reload runs to its end even
// if ctx is cancelled (a client that went away), so that the service and
// the API's tokens never disagree.
func (b *backend) Reload(ctx context.Context) error {
	b.reloadMu.Lock()
	defer b.reloadMu.Unlock()
	if b.reloadCert != nil {
		b.reloadCert()
	}
	s := b.service()
	if s == nil {
		return errNotStarted
	}
	cfg, err := config.Load(b.path)
	if err != nil {
		return fmt.Errorf("%w: %w", api.ErrConfigRejected, err)
	}
	if err := checkListen(cfg, b.listen); err != nil {
		return fmt.Errorf("%w: %w", api.ErrConfigRejected, err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reloadTimeout)
	defer cancel()
	added, removed, changed, err := s.Reload(ctx, cfg)
	if err != nil {
		return err
	}
	old := b.cfg.Swap(newRunningConfig(cfg))
	b.onReload(cfg)
	b.logReload(old.cfg, cfg, added, removed, changed)
	return nil
}

// checkListen keeps the guarantee that the API is open (no token) only on
// loopback: a configuration without [[api_token]] is refused while the
// API listens on another address.
func checkListen(cfg *config.Config, listen net.Addr) error {
	if !cfg.RequireLoopback() || isLoopback(listen) {
		return nil
	}
	return fmt.Errorf("the configuration has no [[api_token]] and the API listens on %s, not on loopback: add a token, or change server.listen and restart", listen)
}

// isLoopback reports whether addr is a loopback TCP address.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// logReload logs what a reload changed. It never logs a secret: remotes
// and tokens are named by their ids.
func (b *backend) logReload(old, cfg *config.Config, added, removed, changed []string) {
	tokens := !reflect.DeepEqual(old.APITokens, cfg.APITokens)
	polling := actors.PollingChanges(old.Polling, cfg.Polling) // applied live (or the reload was refused)
	ev := b.log.Info()
	if len(added)+len(removed)+len(changed)+len(polling) == 0 && !tokens {
		ev = ev.Bool("unchanged", true)
	}
	ev.Strs("added", added).Strs("removed", removed).Strs("changed", changed).Strs("polling_changed", polling).
		Bool("api_tokens_changed", tokens).Int("remotes", len(cfg.Remotes)).
		Str("file", b.path).Msg("configuration reloaded")
	if old.Server != cfg.Server {
		b.log.Warn().Str("file", b.path).Msg("[server] changed: it takes effect on the next start")
	}
}
