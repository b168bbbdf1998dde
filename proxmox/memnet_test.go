package proxmox

import (
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// This file is an in-memory network for tests: connections are pairs of
// buffered pipes (net.Pipe is unbuffered, and TLS 1.3 makes both sides write
// at once), built from channels and timers only, so a test can run client
// and server in a testing/synctest bubble with virtual time.

// memBufMax is the per-direction buffer, like a socket buffer.
const memBufMax = 256 << 10

type memAddr string

func (a memAddr) Network() string { return "tcp" }
func (a memAddr) String() string  { return string(a) }

// memBuf is one direction of a connection.
type memBuf struct {
	mu         sync.Mutex
	buf        []byte
	eof        bool // the writer closed
	readerGone bool // the reader closed
	rdeadline  time.Time
	wdeadline  time.Time
	rtimer     *time.Timer
	wtimer     *time.Timer
	canRead    chan struct{} // capacity 1: a wake-up for the reader
	canWrite   chan struct{} // capacity 1: a wake-up for the writer
}

func newMemBuf() *memBuf {
	return &memBuf{canRead: make(chan struct{}, 1), canWrite: make(chan struct{}, 1)}
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (b *memBuf) read(p []byte) (int, error) {
	for {
		b.mu.Lock()
		switch {
		case b.readerGone:
			b.mu.Unlock()
			return 0, net.ErrClosed
		case len(b.buf) > 0:
			n := copy(p, b.buf)
			b.buf = b.buf[n:]
			b.mu.Unlock()
			wake(b.canWrite)
			return n, nil
		case b.eof:
			b.mu.Unlock()
			return 0, io.EOF
		case !b.rdeadline.IsZero() && !time.Now().Before(b.rdeadline):
			b.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		b.mu.Unlock()
		<-b.canRead
	}
}

func (b *memBuf) write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		b.mu.Lock()
		switch {
		case b.eof:
			b.mu.Unlock()
			return written, net.ErrClosed
		case b.readerGone:
			b.mu.Unlock()
			return written, syscall.ECONNRESET
		case !b.wdeadline.IsZero() && !time.Now().Before(b.wdeadline):
			b.mu.Unlock()
			return written, os.ErrDeadlineExceeded
		case len(b.buf) < memBufMax:
			n := min(len(p), memBufMax-len(b.buf))
			b.buf = append(b.buf, p[:n]...)
			p = p[n:]
			written += n
			b.mu.Unlock()
			wake(b.canRead)
			continue
		}
		b.mu.Unlock()
		<-b.canWrite
	}
	return written, nil
}

func (b *memBuf) setDeadline(d *time.Time, t time.Time, timer **time.Timer, w chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	*d = t
	if *timer != nil {
		(*timer).Stop()
		*timer = nil
	}
	if !t.IsZero() {
		if dur := time.Until(t); dur > 0 {
			*timer = time.AfterFunc(dur, func() { wake(w) })
		}
	}
	wake(w)
}

// memConn is one end of an in-memory connection.
type memConn struct {
	in, out       *memBuf
	local, remote memAddr
	once          sync.Once
}

func memPipe(clientAddr, serverAddr string) (client, server net.Conn) {
	a, b := newMemBuf(), newMemBuf()
	return &memConn{in: a, out: b, local: memAddr(clientAddr), remote: memAddr(serverAddr)},
		&memConn{in: b, out: a, local: memAddr(serverAddr), remote: memAddr(clientAddr)}
}

func (c *memConn) Read(p []byte) (int, error)  { return c.in.read(p) }
func (c *memConn) Write(p []byte) (int, error) { return c.out.write(p) }
func (c *memConn) LocalAddr() net.Addr         { return c.local }
func (c *memConn) RemoteAddr() net.Addr        { return c.remote }

func (c *memConn) Close() error {
	c.once.Do(func() {
		c.in.mu.Lock()
		c.in.readerGone = true
		c.in.mu.Unlock()
		wake(c.in.canRead)
		wake(c.in.canWrite)
		c.out.mu.Lock()
		c.out.eof = true
		c.out.mu.Unlock()
		wake(c.out.canRead)
		wake(c.out.canWrite)
	})
	return nil
}

func (c *memConn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *memConn) SetReadDeadline(t time.Time) error {
	c.in.setDeadline(&c.in.rdeadline, t, &c.in.rtimer, c.in.canRead)
	return nil
}

func (c *memConn) SetWriteDeadline(t time.Time) error {
	c.out.setDeadline(&c.out.wdeadline, t, &c.out.wtimer, c.out.canWrite)
	return nil
}

// memListener accepts the connections dialed to its address.
type memListener struct {
	addr memAddr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return l.addr }

// memNet routes dials to listeners by address. An address can be made to
// refuse connections or to hang until the dial times out.
type memNet struct {
	mu      sync.Mutex
	ls      map[string]*memListener
	refuse  map[string]bool
	hang    map[string]bool
	dials   map[string]int
	clients int
}

func newMemNet() *memNet {
	return &memNet{ls: map[string]*memListener{}, refuse: map[string]bool{}, hang: map[string]bool{}, dials: map[string]int{}}
}

// listen registers a listener for addr ("host:port").
func (n *memNet) listen(addr string) *memListener {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := &memListener{addr: memAddr(addr), ch: make(chan net.Conn), done: make(chan struct{})}
	n.ls[addr] = l
	return l
}

// setRefuse makes dials to addr fail (or work again).
func (n *memNet) setRefuse(addr string, refuse bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.refuse[addr] = refuse
}

// setHang makes dials to addr block until their context ends.
func (n *memNet) setHang(addr string, hang bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hang[addr] = hang
}

// dialCount returns the number of dials to addr.
func (n *memNet) dialCount(addr string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dials[addr]
}

// errRefused mimics a refused TCP connection.
var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

// DialContext has the signature of Config.DialContext.
func (n *memNet) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	n.dials[addr]++
	n.clients++
	l, refuse, hang := n.ls[addr], n.refuse[addr], n.hang[addr]
	client := memAddr("10.0.0.1:" + strconv.Itoa(40000+n.clients))
	n.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
	}
	if l == nil || refuse {
		return nil, errRefused
	}
	cc, sc := memPipe(string(client), addr)
	select {
	case l.ch <- sc:
		return cc, nil
	case <-l.done:
		return nil, errRefused
	case <-ctx.Done():
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
	}
}
