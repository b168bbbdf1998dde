package memnet

import (
	"bytes"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// DefaultBufferSize is how many bytes one direction of a connection holds
// before Write blocks, about what a loopback socket buffers.
const DefaultBufferSize = 256 << 10

// stream is one direction of a connection: bytes written by one end and
// not yet read by the other.
type stream struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	limit   int           // Write blocks while buf holds this many bytes
	eof     bool          // the writing end closed: the reader gets io.EOF once buf is empty
	broken  bool          // the reading end closed: writes fail with a broken pipe
	changed chan struct{} // closed and replaced on every change; waiters select on it
}

func newStream(limit int) *stream {
	return &stream{limit: limit, changed: make(chan struct{})}
}

// signal wakes everyone waiting for a change; the caller holds mu.
func (s *stream) signal() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// conn is one end of an in-memory connection.
type conn struct {
	rx, tx        *stream // rx: the peer writes, we read; tx: the other way
	local, remote net.Addr
	rd, wd        *deadline
	done          chan struct{} // closed by Close
	closeOnce     sync.Once
	onClose       func(*conn) // removes the connection from its network
}

// newPair returns two connected ends: a dials, b is accepted.
func newPair(aAddr, bAddr net.Addr, limit int, onClose func(*conn)) (a, b *conn) {
	ab, ba := newStream(limit), newStream(limit)
	a = &conn{rx: ba, tx: ab, local: aAddr, remote: bAddr, rd: newDeadline(), wd: newDeadline(), done: make(chan struct{}), onClose: onClose}
	b = &conn{rx: ab, tx: ba, local: bAddr, remote: aAddr, rd: newDeadline(), wd: newDeadline(), done: make(chan struct{}), onClose: onClose}
	return a, b
}

func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.local.Network(), Source: c.local, Addr: c.remote, Err: err}
}

// Read reads what the peer wrote; it blocks until there is data, the peer
// closed (io.EOF), the connection is closed or the read deadline passes.
func (c *conn) Read(p []byte) (int, error) {
	for {
		if isClosed(c.done) {
			return 0, c.opError("read", net.ErrClosed)
		}
		dl := c.rd.wait()
		if isClosed(dl) {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		s := c.rx
		s.mu.Lock()
		if s.buf.Len() > 0 {
			n, _ := s.buf.Read(p)
			s.signal()
			s.mu.Unlock()
			return n, nil
		}
		if s.eof {
			s.mu.Unlock()
			return 0, io.EOF
		}
		if len(p) == 0 {
			s.mu.Unlock()
			return 0, nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-c.done:
		case <-dl:
		}
	}
}

// Write writes p, blocking while the peer's buffer is full. It fails once
// the peer closed (broken pipe), the connection is closed or the write
// deadline passes, reporting how much was written before.
func (c *conn) Write(p []byte) (int, error) {
	written := 0
	for {
		if isClosed(c.done) {
			return written, c.opError("write", net.ErrClosed)
		}
		dl := c.wd.wait()
		if isClosed(dl) {
			return written, c.opError("write", os.ErrDeadlineExceeded)
		}
		s := c.tx
		s.mu.Lock()
		if s.broken {
			s.mu.Unlock()
			return written, c.opError("write", os.NewSyscallError("write", syscall.EPIPE))
		}
		if room := s.limit - s.buf.Len(); room > 0 && len(p) > 0 {
			n := min(room, len(p))
			s.buf.Write(p[:n])
			p = p[n:]
			written += n
			s.signal()
		}
		if len(p) == 0 {
			s.mu.Unlock()
			return written, nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-c.done:
		case <-dl:
		}
	}
}

// Close closes this end: the peer reads io.EOF after what was already
// written, and its writes fail. Unread data sent to this end is dropped.
func (c *conn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.done)
		c.rx.mu.Lock()
		c.rx.broken = true
		c.rx.buf.Reset()
		c.rx.signal()
		c.rx.mu.Unlock()
		c.tx.mu.Lock()
		c.tx.eof = true
		c.tx.signal()
		c.tx.mu.Unlock()
		c.rd.stop()
		c.wd.stop()
		if c.onClose != nil {
			c.onClose(c)
		}
	})
	if !first {
		return c.opError("close", net.ErrClosed)
	}
	return nil
}

// LocalAddr returns this end's address.
func (c *conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *conn) SetDeadline(t time.Time) error {
	if isClosed(c.done) {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline sets the read deadline; a past time wakes a blocked Read.
func (c *conn) SetReadDeadline(t time.Time) error {
	if isClosed(c.done) {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline; a past time wakes a blocked Write.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if isClosed(c.done) {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}
