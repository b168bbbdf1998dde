package proxmox

import (
	"context"
	"net"
	"sync"
	"syscall"

	"github.com/taskfleet/taskfleet/internal/memnet"
)

// memNet is the in-memory network of these tests (internal/memnet, which
// works inside synctest bubbles) plus two faults: an address can refuse
// connections or hang until the dial's context ends. It counts dials.
type memNet struct {
	net    memnet.Network
	mu     sync.Mutex
	refuse map[string]bool
	hang   map[string]bool
	dials  map[string]int
}

func newMemNet() *memNet {
	return &memNet{refuse: map[string]bool{}, hang: map[string]bool{}, dials: map[string]int{}}
}

// listen registers a listener for addr ("host:port").
func (n *memNet) listen(addr string) net.Listener {
	l, err := n.net.Listen(addr)
	if err != nil {
		panic(err) // test set-up: addresses are distinct
	}
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

// DialContext has the signature of Config.DialContext.
func (n *memNet) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	n.dials[addr]++
	refuse, hang := n.refuse[addr], n.hang[addr]
	n.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
	}
	if refuse {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	return n.net.DialContext(ctx, network, addr)
}
