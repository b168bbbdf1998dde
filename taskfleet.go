// Package taskfleet keeps a complete, always-fresh history of the tasks
// that run on a fleet of Proxmox VE clusters and Proxmox Backup Servers,
// and answers questions about it without waiting for the network.
//
// It is an actor system (github.com/asynkron/protoactor-go): a supervisor
// ticks one poller per remote, the pollers fetch in the background and hand
// their batches to a single cache writer, and queries read the cache's
// latest immutable snapshot. Start runs it inside a program, either in an
// actor system of its own or, with WithActorSystem, inside the host's.
// The taskfleet command (cmd/taskfleet) is such a program.
package taskfleet

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/actors"
	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/metrics"
)

// Service is a running taskfleet: Tasks, Statistics, Track, Refresh,
// Remotes, Reload, Stop, and Done, Err and Ready to watch it. It is
// [actors.Service] under its one name.
type Service = actors.Service

// Option configures Start.
type Option func(*actors.Options)

// WithActorSystem spawns taskfleet's actor tree inside the host's actor
// system, under the given name (several instances need distinct names).
// Stop then stops taskfleet's actors and leaves the system running.
func WithActorSystem(sys *actor.ActorSystem, name string) Option {
	return func(o *actors.Options) { o.System, o.Name = sys, name }
}

// WithLogger sends taskfleet's logs to log.
func WithLogger(log zerolog.Logger) Option {
	return func(o *actors.Options) { o.Logger = log }
}

// WithMetrics records metrics in m.
func WithMetrics(m *metrics.Metrics) Option {
	return func(o *actors.Options) { o.Metrics = m }
}

// WithDialer replaces the network dialer of every remote client, e.g. to
// reach remotes through a proxy or an in-memory test network.
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(o *actors.Options) { o.DialContext = dial }
}

// Start starts taskfleet for cfg and returns once its cache is loaded. It
// returns an error, with taskfleet stopped again, when the cache cannot be
// opened (the writer's failure) or ctx ends first.
//
// Its supervisor is supervised by taskfleet's root strategy (restarts with
// growing backoff, at most actors.RootFailureLimit failures in a row);
// when the tree ends for good, Done is closed, Err says why and Ready is
// false.
func Start(ctx context.Context, cfg *config.Config, opts ...Option) (*Service, error) {
	var o actors.Options
	for _, opt := range opts {
		opt(&o)
	}
	s, err := actors.Start(cfg, o)
	if err != nil {
		return nil, err
	}
	if err := s.WaitLoaded(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = s.Stop(stopCtx) // the load's error is the one to report
		return nil, fmt.Errorf("start: cache not loaded: %w", err)
	}
	return s, nil
}

// Spawn starts taskfleet's tree as the child named name of the host actor
// whose context is parent, and returns at once; call it from that actor's
// Receive (in Started, say). The host actor's supervisor strategy then
// supervises taskfleet's supervisor: it decides on its panics, and when it
// stops it, Done is closed and Err names the last panic. The host may also
// Watch svc.PID(). The cache loads in the background: WaitLoaded (from
// outside the host's Receive) or Ready tell when queries answer.
func Spawn(parent actor.SpawnerContext, name string, cfg *config.Config, opts ...Option) (*Service, error) {
	var o actors.Options
	for _, opt := range opts {
		opt(&o)
	}
	o.Parent, o.System, o.Name = parent, nil, name
	return actors.Start(cfg, o)
}
