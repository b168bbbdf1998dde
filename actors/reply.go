package actors

import (
	"errors"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

// errReplyStopped is the answer of a request whose reply process was
// stopped (Root.Stop of its PID) before an answer came.
var errReplyStopped = errors.New("request: reply process stopped")

// replyProcess receives the answer to one request: the requester
// registers it in the actor system's process registry, sends its message
// with the reply's PID as the sender and waits on answer. It is used
// instead of protoactor's futures, which stay registered until their
// timeout once their waiter has given up, and whose delivery writes the
// result without a lock (a late answer races with the timeout).
//
// The first answer goes into the buffered channel; later ones, and
// answers after the requester left, are dropped. The requester removes
// the process from the registry when it stops waiting (answer, context,
// timeout or the tree's end), so nothing is left registered and no
// goroutine waits for it.
type replyProcess struct {
	answer chan replyAnswer // capacity 1: the first answer
}

// replyAnswer is what a request got: the actor's answer or an error.
type replyAnswer struct {
	res any
	err error
}

var _ actor.Process = (*replyProcess)(nil)

// newReply registers a reply process in sys and returns it with its PID;
// the caller removes it (ProcessRegistry.Remove(pid)) when it stops
// waiting.
func newReply(sys *actor.ActorSystem) (*replyProcess, *actor.PID, error) {
	p := &replyProcess{answer: make(chan replyAnswer, 1)}
	// NextId never repeats: the id is taken only if something else
	// registered a name of this form.
	pid, ok := sys.ProcessRegistry.Add(p, "reply"+sys.ProcessRegistry.NextId())
	if !ok {
		return nil, nil, fmt.Errorf("request: reply process id %s taken", pid.Id)
	}
	return p, pid, nil
}

// deliver keeps a if it is the first answer and drops it otherwise.
func (p *replyProcess) deliver(a replyAnswer) {
	select {
	case p.answer <- a:
	default:
	}
}

// SendUserMessage delivers an actor's answer; a dead letter's response
// (the target does not exist) is actor.ErrDeadLetter, as for a future.
func (p *replyProcess) SendUserMessage(_ *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	if _, ok := msg.(*actor.DeadLetterResponse); ok {
		p.deliver(replyAnswer{err: actor.ErrDeadLetter})
		return
	}
	p.deliver(replyAnswer{res: msg})
}

// SendSystemMessage delivers a system message as the answer, as a
// future does.
func (p *replyProcess) SendSystemMessage(_ *actor.PID, message any) {
	p.deliver(replyAnswer{res: message})
}

// Stop ends the wait with errReplyStopped; the requester removes the
// process from the registry.
func (p *replyProcess) Stop(*actor.PID) {
	p.deliver(replyAnswer{err: errReplyStopped})
}
