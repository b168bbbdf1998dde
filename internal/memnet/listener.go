package memnet

import (
	"net"
	"sync"
)

// listener accepts the connections dialed to its address. Its backlog is
// unbounded: a dial never waits for Accept, as with TCP.
type listener struct {
	net  *Network
	key  string
	addr net.Addr

	mu      sync.Mutex
	backlog []*conn
	closed  bool
	ready   chan struct{} // closed and replaced when a connection arrives
	done    chan struct{} // closed by Close
}

// enqueue hands a dialed connection to Accept; false if the listener closed.
func (l *listener) enqueue(c *conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.backlog = append(l.backlog, c)
	close(l.ready)
	l.ready = make(chan struct{})
	return true
}

// Accept waits for the next connection. After Close it returns a
// *net.OpError wrapping net.ErrClosed.
func (l *listener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: net.ErrClosed}
		}
		if len(l.backlog) > 0 {
			c := l.backlog[0]
			l.backlog[0] = nil
			l.backlog = l.backlog[1:]
			l.mu.Unlock()
			return c, nil
		}
		ready := l.ready
		l.mu.Unlock()
		select {
		case <-ready:
		case <-l.done:
		}
	}
}

// Close stops listening: blocked and later Accept calls fail with
// net.ErrClosed, later dials are refused and connections not yet accepted
// are closed. Connections already accepted stay open.
func (l *listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return &net.OpError{Op: "close", Net: "tcp", Addr: l.addr, Err: net.ErrClosed}
	}
	l.closed = true
	pending := l.backlog
	l.backlog = nil
	close(l.done)
	l.mu.Unlock()
	l.net.unlisten(l)
	for _, c := range pending {
		c.Close()
	}
	return nil
}

// Addr returns the listening address.
func (l *listener) Addr() net.Addr { return l.addr }
