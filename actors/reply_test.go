package actors

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

// Messages of the test's responder actor.
type (
	echoRequest struct{ n int } // answered at once with n
	holdRequest struct{}        // kept; answered "late" on releaseHeld
	releaseHeld struct{}        // answer every held request
)

// responder answers echoRequests at once and holdRequests only when told;
// it reports each held request on held.
type responder struct {
	held    chan<- struct{}
	senders []*actor.PID
}

func (r *responder) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *echoRequest:
		c.Respond(m.n)
	case *holdRequest:
		r.senders = append(r.senders, c.Sender())
		r.held <- struct{}{}
	case *releaseHeld:
		for _, p := range r.senders {
			c.Send(p, "late")
		}
		r.senders = nil
	}
}

// requestRig is a Service with only what request needs: an actor system
// (protoactor's logs dropped: late answers are dead letters), the
// lifecycle and the apply limit, and a responder.
type requestRig struct {
	s    *Service
	to   *actor.PID
	held chan struct{}
}

func newRequestRig(t *testing.T, applyLimit time.Duration) *requestRig {
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(LoggerFactory(zerolog.Nop(), slog.LevelWarn)))
	held := make(chan struct{}, 100)
	to := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &responder{held: held} }))
	t.Cleanup(sys.Shutdown)
	return &requestRig{s: &Service{sys: sys, env: &Env{life: newLifecycle(), applyKnob: applyLimit}}, to: to, held: held}
}

// registered counts the processes in the rig's registry.
func (r *requestRig) registered() int {
	n := 0
	for _, m := range r.s.sys.ProcessRegistry.LocalPIDs.LocalPIDs {
		n += m.Count()
	}
	return n
}

// TestRequestAnswered: a request gets its answer, and its reply process
// is gone from the registry afterwards.
func TestRequestAnswered(t *testing.T) {
	r := newRequestRig(t, time.Minute)
	before := r.registered()
	for i := range 100 {
		res, err := r.s.request(context.Background(), r.to, &echoRequest{n: i})
		if err != nil || res != i {
			t.Fatalf("request %d: %v, %v", i, res, err)
		}
	}
	if n := r.registered(); n != before {
		t.Errorf("%d processes registered after the requests, %d before", n, before)
	}
	// A request to an actor that does not exist: a dead letter.
	if _, err := r.s.request(context.Background(), actor.NewPID(r.s.sys.Address(), "nobody"), &echoRequest{}); !errors.Is(err, actor.ErrDeadLetter) {
		t.Errorf("request to no actor: %v, want %v", err, actor.ErrDeadLetter)
	}
	if n := r.registered(); n != before {
		t.Errorf("%d processes registered after the dead letter, %d before", n, before)
	}
}

// TestRequestAbandoned: a request cut short by its context, by its
// timeout or by the tree's end returns at once with the error its
// callers branch on, leaves nothing in the registry and nothing waiting
// (the synctest bubble ends without time passing); the late answer is
// dropped.
func TestRequestAbandoned(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(r *requestRig, cancel context.CancelFunc) // cuts the request short, once held
		want func(r *requestRig, err error) bool
	}{
		{name: "context cancelled", end: func(_ *requestRig, cancel context.CancelFunc) { cancel() },
			want: func(_ *requestRig, err error) bool { return errors.Is(err, context.Canceled) }},
		{name: "timeout", end: func(*requestRig, context.CancelFunc) { time.Sleep(time.Minute) },
			want: func(_ *requestRig, err error) bool { return errors.Is(err, actor.ErrTimeout) }},
		{name: "tree ended", end: func(r *requestRig, _ context.CancelFunc) { r.s.env.life.ended() },
			want: func(r *requestRig, err error) bool { return errors.Is(err, ErrStopped) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRequestRig(t, time.Minute)
				before := r.registered()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan error, 1)
				began := time.Now()
				go func() {
					_, err := r.s.request(ctx, r.to, &holdRequest{})
					done <- err
				}()
				<-r.held
				synctest.Wait()
				if n := r.registered(); n != before+1 {
					t.Errorf("%d processes registered while the request waits, want %d", n, before+1)
				}
				tc.end(r, cancel)
				err := <-done
				if !tc.want(r, err) {
					t.Errorf("request: %v", err)
				}
				if tc.name != "timeout" && time.Since(began) != 0 {
					t.Errorf("request returned after %v, want at once", time.Since(began))
				}
				if n := r.registered(); n != before {
					t.Errorf("%d processes registered after the request ended, %d before", n, before)
				}
				r.s.sys.Root.Send(r.to, &releaseHeld{}) // the late answer: a dead letter
				// protoactor's dead-letter log throttle waits out its
				// interval in a goroutine of its own.
				time.Sleep(r.s.sys.Config.DeadLetterThrottleInterval)
				synctest.Wait()
				if n := r.registered(); n != before {
					t.Errorf("%d processes registered after the late answer, %d before", n, before)
				}
			})
		})
	}
}

// TestRequestLateAnswerRace abandons requests while their answers arrive
// and sends to their reply processes from outside at the same time (run
// with -race): each ends with the answer or with its context's error,
// and nothing stays registered.
func TestRequestLateAnswerRace(t *testing.T) {
	r := newRequestRig(t, time.Minute)
	before := r.registered()
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			go cancel() // races with the answer
			res, err := r.s.request(ctx, r.to, &echoRequest{n: i})
			if err == nil && res != i || err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("request %d: %v, %v", i, res, err)
			}
		})
	}
	wg.Wait()
	// A reply process answered from inside and from outside at once: the
	// first answer is kept, the other dropped.
	for range 100 {
		p, pid, err := newReply(r.s.sys)
		if err != nil {
			t.Fatal(err)
		}
		r.s.sys.Root.RequestWithCustomSender(r.to, &echoRequest{n: 1}, pid)
		go r.s.sys.Root.Send(pid, 2)
		if a := <-p.answer; a.err != nil || a.res != 1 && a.res != 2 {
			t.Errorf("answer %+v, want 1 or 2", a)
		}
		r.s.sys.ProcessRegistry.Remove(pid)
	}
	if n := r.registered(); n != before {
		t.Errorf("%d processes registered after the requests, %d before", n, before)
	}
}
