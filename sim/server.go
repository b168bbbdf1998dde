package sim

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// nodeServer is the HTTPS server of one node while it is online. It is
// started by startNode and stopped by node.stop, which waits for every
// goroutine it started: the accept loop (http.Server.Serve), one per
// connection, and the handlers.
type nodeServer struct {
	f      *Fleet
	n      *node
	srv    *http.Server
	done   chan struct{} // closed by stop: wakes waiting handlers
	served chan struct{} // closed when Serve has returned
	ln     net.Listener
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[*serverConn]struct{} // open connections, hijacked ones included
}

// startNode listens on the node's address and serves it.
func (f *Fleet) startNode(n *node) error {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	return f.startLocked(n)
}

// startLocked is startNode; the caller holds n.lifeMu. An offline node
// stays down; a node of a closing fleet, or a removed one, does not start.
func (f *Fleet) startLocked(n *node) error {
	switch {
	case n.srv != nil || !n.online():
		return nil
	case f.closing.Load():
		return fmt.Errorf("serve node %s: fleet closed", n.name)
	case n.removed.Load():
		return fmt.Errorf("serve node %s: node removed", n.name)
	}
	ln, err := f.listen(n)
	if err != nil {
		return fmt.Errorf("serve node %s: %w", n.name, err)
	}
	s := &nodeServer{f: f, n: n, ln: ln, done: make(chan struct{}), served: make(chan struct{}), conns: map[*serverConn]struct{}{}}
	s.srv = &http.Server{
		Handler:     s,
		ConnContext: s.connContext,
		ConnState:   s.connState,
		IdleTimeout: f.idleTimeout(n.remote.kind),
		// pveproxy's inactivity timeout also closes a connection that
		// never sends a request (a client's spare dial); net/http's
		// IdleTimeout only runs between requests.
		ReadHeaderTimeout: f.idleTimeout(n.remote.kind),
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	tcfg := &tls.Config{
		Certificates:           []tls.Certificate{n.cert},
		GetConfigForClient:     s.impostorConfig,
		NextProtos:             []string{"http/1.1"},
		MinVersion:             tls.VersionTLS12,
		SessionTicketsDisabled: f.cfg.NoSessionTickets,
	}
	go func() {
		defer close(s.served)
		s.srv.Serve(tls.NewListener(&acceptor{Listener: ln, s: s}, tcfg))
	}()
	n.srv = s
	f.log.Debug().Str("remote", n.remote.id).Str("node", n.name).Str("addr", n.address()).Msg("node serving")
	return nil
}

// idleTimeout is the idle timeout of a node of the given kind (0: none).
func (f *Fleet) idleTimeout(k task.Kind) time.Duration {
	switch {
	case f.cfg.IdleTimeout < 0:
		return 0
	case f.cfg.IdleTimeout > 0:
		return f.cfg.IdleTimeout
	case k == task.PVE:
		return PVEIdleTimeout
	}
	return 0 // PBS: hyper's server has no idle timeout
}

// requestsPerConn is how many requests a connection to a node of the
// given kind serves (0: no cap).
func (f *Fleet) requestsPerConn(k task.Kind) int {
	switch {
	case f.cfg.MaxRequestsPerConn < 0:
		return 0
	case f.cfg.MaxRequestsPerConn > 0:
		return f.cfg.MaxRequestsPerConn
	case k == task.PVE:
		return PVERequestsPerConn
	}
	return 0 // PBS: no cap
}

// listen opens the node's listener; the caller holds n.lifeMu. The first
// time, a loopback address that cannot be bound falls back to 127.0.0.1
// with a free port, which the node then keeps.
func (f *Fleet) listen(n *node) (net.Listener, error) {
	if f.network != nil {
		ln, err := f.network.Listen(n.address())
		n.bound = err == nil
		return ln, err
	}
	ln, err := net.Listen("tcp", n.address())
	if err != nil && !n.bound {
		f.log.Debug().Err(err).Str("node", n.name).Msg("loopback address unavailable, using 127.0.0.1")
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	n.addr.Store(&addr)
	n.bound = true
	return ln, nil
}

// stop takes the node's server down, if it runs, and waits until all its
// goroutines have returned.
func (n *node) stop() {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	n.stopLocked()
}

// stopLocked is stop; the caller holds n.lifeMu.
func (n *node) stopLocked() {
	s := n.srv
	n.srv = nil
	if s == nil {
		return
	}
	// Connections close before waiting handlers wake up, so that none of
	// them can still answer: a hanging request ends without a response.
	s.srv.Close() // closes the listener and the connections it tracks
	<-s.served    // no Accept after this, so no wg.Add either
	s.ln.Close()  // in case Serve returned before it tracked the listener
	s.mu.Lock()
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns { // and those it does not track: hijacked ones
		c.Close()
	}
	close(s.done)
	s.wg.Wait()
}

// impostorConfig is the TLS configuration of a node with the WrongCert
// fault: another certificate and, like a man in the middle who lacks the
// node's ticket keys, no session resumption, so that clients holding a
// session ticket see the wrong certificate too. Nil otherwise: the
// node's own configuration applies.
func (s *nodeServer) impostorConfig(*tls.ClientHelloInfo) (*tls.Config, error) {
	if !s.n.fault.Load().WrongCert {
		return nil, nil
	}
	return &tls.Config{
		Certificates:           []tls.Certificate{s.f.impostor},
		SessionTicketsDisabled: true,
		NextProtos:             []string{"http/1.1"},
		MinVersion:             tls.VersionTLS12,
	}, nil
}

// connInfo is per connection state, in each request's context.
type connInfo struct {
	requests atomic.Int64
}

type connInfoKey struct{}

func (s *nodeServer) connContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connInfoKey{}, &connInfo{})
}

// connState ends the wait for a connection when http.Server is done with
// it: closed, or hijacked (then the handler, counted on its own, owns it).
func (s *nodeServer) connState(_ net.Conn, st http.ConnState) {
	if st == http.StateClosed || st == http.StateHijacked {
		s.wg.Done()
	}
}

// acceptor counts and wraps the accepted connections.
type acceptor struct {
	net.Listener
	s *nodeServer
}

// Accept accepts the next connection.
func (a *acceptor) Accept() (net.Conn, error) {
	c, err := a.Listener.Accept()
	if err != nil {
		return nil, err
	}
	s := a.s
	s.wg.Add(1) // done in connState
	s.n.remote.stats.connections.Add(1)
	sc := &serverConn{Conn: c, s: s, delay: s.n.fault.Load().ConnectLatency, closed: make(chan struct{})}
	s.mu.Lock()
	s.conns[sc] = struct{}{}
	s.mu.Unlock()
	return sc, nil
}

// serverConn is an accepted connection; its first read waits for the
// connect latency of the fault in force when it was accepted.
type serverConn struct {
	net.Conn
	s         *nodeServer
	delay     time.Duration
	waited    atomic.Bool
	closeOnce sync.Once
	closed    chan struct{}
}

// Read reads from the connection, after the connect latency.
func (c *serverConn) Read(p []byte) (int, error) {
	if c.delay > 0 && !c.waited.Swap(true) {
		t := time.NewTimer(c.delay)
		select {
		case <-t.C:
		case <-c.closed:
			t.Stop()
			return 0, net.ErrClosed
		case <-c.s.done:
			t.Stop()
			return 0, net.ErrClosed
		}
	}
	n, err := c.Conn.Read(p)
	c.s.n.remote.stats.bytesIn.Add(int64(n))
	return n, err
}

// Write writes to the connection, counting the bytes.
func (c *serverConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.s.n.remote.stats.bytesOut.Add(int64(n))
	return n, err
}

// Close closes the connection.
func (c *serverConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		close(c.closed)
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

// sleep waits d; false if the request was canceled or the server stops
// first.
func (s *nodeServer) sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.done:
	}
	return false
}
