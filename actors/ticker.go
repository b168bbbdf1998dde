package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/taskfleet/taskfleet/messages"
)

// ticker sends messages.Tick to the supervisor at wall-clock multiples of
// its interval (the tick's phases, schedule.go), as PDM's task loop does
// at multiples of the tick. It is a plain goroutine and not protoactor's
// scheduler, whose timer has data races (see docs/actors.md). A tick is
// computed from the clock when the goroutine wakes, so a late wake-up
// skips the missed instants instead of queueing them.
//
// Stop path: stop() closes quit and waits until the goroutine has returned.
type ticker struct {
	quit chan struct{}
	done chan struct{}
}

func startTicker(sender actor.SenderContext, target *actor.PID, interval time.Duration) *ticker {
	t := &ticker{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(t.done)
		timer := time.NewTimer(time.Until(nextTick(time.Now(), interval)))
		defer timer.Stop()
		for {
			select {
			case <-t.quit:
				return
			case now := <-timer.C:
				at := now.Truncate(interval)
				sender.Send(target, &messages.Tick{At: at})
				timer.Reset(time.Until(nextTick(time.Now(), interval)))
			}
		}
	}()
	return t
}

// stop stops the goroutine and waits for it. Safe on a nil ticker.
func (t *ticker) stop() {
	if t == nil {
		return
	}
	select {
	case <-t.quit:
	default:
		close(t.quit)
	}
	<-t.done
}
