package memnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// Network is a set of in-memory listeners and the connections between
// them and their dialers. The zero value is an empty network ready to use;
// it must not be copied after first use. All methods are safe for
// concurrent use.
type Network struct {
	// BufferSize is how many bytes each direction of a connection holds
	// before Write blocks; 0 means DefaultBufferSize. Set it before use.
	BufferSize int

	mu         sync.Mutex
	listeners  map[string]*listener
	conns      map[*conn]struct{}
	closed     bool
	nextPort   int // for Listen on port 0
	nextClient int // source ports of dialed connections
}

// Listen registers addr, a "host:port" pair such as "127.0.3.7:8006", and
// returns a listener for it. Port 0 picks a free port, which the
// listener's Addr reports. Listening on an address in use fails like TCP
// does (EADDRINUSE).
func (n *Network) Listen(addr string) (net.Listener, error) {
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Err: err}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Err: net.ErrClosed}
	}
	if n.listeners == nil {
		n.listeners = make(map[string]*listener)
		n.conns = make(map[*conn]struct{})
	}
	if port == 0 {
		for {
			n.nextPort++
			port = 20000 + n.nextPort%40000
			if _, used := n.listeners[joinAddr(host, port)]; !used {
				break
			}
		}
	}
	key := joinAddr(host, port)
	if _, used := n.listeners[key]; used {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: makeAddr(host, port), Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	}
	l := &listener{net: n, key: key, addr: makeAddr(host, port), ready: make(chan struct{}), done: make(chan struct{})}
	n.listeners[key] = l
	return l, nil
}

// DialContext connects to the listener at addr. Only the "tcp", "tcp4"
// and "tcp6" networks exist. When nobody listens at addr it returns a
// *net.OpError whose cause is syscall.ECONNREFUSED, as a TCP dial does.
// Like TCP, the connection is established before the listener accepts it.
func (n *Network) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	refused := &net.OpError{Op: "dial", Net: network, Addr: makeAddr(host, port), Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: network, Addr: makeAddr(host, port), Err: net.ErrClosed}
	}
	l := n.listeners[joinAddr(host, port)]
	if l == nil {
		n.mu.Unlock()
		return nil, refused
	}
	n.nextClient++
	src := makeAddr("127.0.0.1", 32768+n.nextClient%28000)
	limit := n.BufferSize
	if limit <= 0 {
		limit = DefaultBufferSize
	}
	client, server := newPair(src, l.addr, limit, n.forget)
	n.conns[client] = struct{}{}
	n.conns[server] = struct{}{}
	n.mu.Unlock()
	if !l.enqueue(server) {
		client.Close()
		server.Close()
		return nil, refused
	}
	return client, nil
}

// Dial is DialContext with context.Background.
func (n *Network) Dial(network, addr string) (net.Conn, error) {
	return n.DialContext(context.Background(), network, addr)
}

// Close closes every listener and every connection of the network; later
// Listen and Dial calls fail with net.ErrClosed.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	ls := make([]*listener, 0, len(n.listeners))
	for _, l := range n.listeners {
		ls = append(ls, l)
	}
	cs := make([]*conn, 0, len(n.conns))
	for c := range n.conns {
		cs = append(cs, c)
	}
	n.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	for _, c := range cs {
		c.Close()
	}
	return nil
}

// forget drops a closed connection from the network's set.
func (n *Network) forget(c *conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}

// unlisten frees the address of a closed listener.
func (n *Network) unlisten(l *listener) {
	n.mu.Lock()
	if n.listeners[l.key] == l {
		delete(n.listeners, l.key)
	}
	n.mu.Unlock()
}

// splitAddr splits "host:port", canonicalising an IP host.
func splitAddr(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("address %s: invalid port", addr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.String()
	}
	return host, port, nil
}

func joinAddr(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// makeAddr returns a *net.TCPAddr for an IP host, else a named address.
func makeAddr(host string, port int) net.Addr {
	if ip, err := netip.ParseAddr(host); err == nil {
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port)))
	}
	return hostAddr(joinAddr(host, port))
}

// hostAddr is the address of a listener registered under a host name.
type hostAddr string

// Network returns "tcp".
func (hostAddr) Network() string { return "tcp" }

// String returns "host:port".
func (a hostAddr) String() string { return string(a) }
