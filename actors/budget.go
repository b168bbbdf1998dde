package actors

import (
	"context"
	"sync"
	"time"

	"github.com/taskfleet/taskfleet/proxmox"
)

// Parking bounds: a request is parked after parkFactor times the typical
// request time (an exponentially weighted average over the fleet), but not
// before minPark and at the latest after the budget's maxPark.
const (
	parkFactor = 5
	minPark    = 100 * time.Millisecond
	// DefaultParkAfter is the latest a request is parked, and the park
	// time while no request has finished yet.
	DefaultParkAfter = 2 * time.Second
)

// Budget is the global cap on concurrent requests to all remotes, on top of
// each remote's own cap (enforced by its client, which takes one of the
// remote's own slots first, so a remote waiting for its own slots holds no
// permit).
//
// Waiters are served first come, first served, so no remote jumps the
// queue, except that urgent requests (polls of tracked tasks, urgent.go)
// are served before routine ones. A request that holds its permit
// much longer than requests typically take (five times the fleet's
// average, at least 100 ms, at most ParkAfter) is parked: its permit
// returns to the pool while the request goes on, bounded by its remote's
// own cap and its request timeout. A hanging remote therefore holds global
// capacity only briefly per request, and connections only within its own
// share and only until its request timeout: it cannot starve the others.
// The cap is thus on requests that are making progress.
//
// Budget is safe for concurrent use.
type Budget struct {
	sem     *prioSem
	maxPark time.Duration

	mu      sync.Mutex
	typical time.Duration // moving average of permit hold times; 0: none yet
}

// NewBudget returns a budget of n concurrent requests (n < 1 means 1) that
// parks a request after parkAfter at the latest (0: DefaultParkAfter).
func NewBudget(n int, parkAfter time.Duration) *Budget {
	if parkAfter <= 0 {
		parkAfter = DefaultParkAfter
	}
	return &Budget{sem: newPrioSem(int64(max(n, 1))), maxPark: parkAfter}
}

// ForRemote returns the limiter one remote's client uses.
func (b *Budget) ForRemote() proxmox.Limiter { return &remoteBudget{b: b} }

// parkAfter returns how long a new permit may be held before it is parked.
func (b *Budget) parkAfter() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.typical == 0 {
		return b.maxPark
	}
	return min(max(parkFactor*b.typical, minPark), b.maxPark)
}

// observe folds the hold time of a finished request into the average.
func (b *Budget) observe(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.typical == 0 {
		b.typical = d
		return
	}
	b.typical += (d - b.typical) / 8
}

// remoteBudget accounts one remote's permits. The client does not say
// which of its requests a Release ends, so a Release ends an unparked
// permit when there is one (freeing it for the fleet) and a parked one
// otherwise; either way the counts stay exact.
type remoteBudget struct {
	b      *Budget
	mu     sync.Mutex
	active []*permit // holding a global permit, oldest first
	parked int       // requests whose permit was returned early
}

type permit struct {
	since time.Time
	timer *time.Timer
}

// Acquire waits for a global permit or until ctx is done.
func (r *remoteBudget) Acquire(ctx context.Context) error {
	if err := r.b.sem.Acquire(ctx, isUrgent(ctx) && !urgentOff.Load()); err != nil {
		return err
	}
	p := &permit{since: time.Now()}
	r.mu.Lock()
	r.active = append(r.active, p)
	// The timer only returns the permit; Release stops it, and a fired
	// timer has nothing left to do, so it needs no other stop path.
	p.timer = time.AfterFunc(r.b.parkAfter(), func() { r.park(p) })
	r.mu.Unlock()
	return nil
}

// park returns p's global permit while its request goes on.
func (r *remoteBudget) park(p *permit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, q := range r.active {
		if q == p {
			r.active = append(r.active[:i], r.active[i+1:]...)
			r.parked++
			r.b.sem.Release()
			return
		}
	}
}

// Release ends one request.
func (r *remoteBudget) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.active) > 0 {
		p := r.active[0]
		r.active = r.active[1:]
		p.timer.Stop()
		r.b.observe(time.Since(p.since))
		r.b.sem.Release()
		return
	}
	if r.parked > 0 {
		r.parked--
	}
}
