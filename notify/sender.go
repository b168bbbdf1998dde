package notify

import (
	"context"
	"fmt"
	"net"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/notify/tmpl"
)

// Sender delivers one message to a target. It is called from one
// goroutine at a time and bounded by ctx.
type Sender interface {
	Send(ctx context.Context, m tmpl.Message) error
	// Close releases idle connections.
	Close()
}

// DialFunc dials a network address (tests route deliveries to an
// in-memory network).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// NewSender returns the sender of a target; dial nil is the system's
// dialer.
func NewSender(n *config.Notify, dial DialFunc) (Sender, error) {
	switch n.Kind {
	case config.NotifyWebhook:
		return newWebhook(n, dial), nil
	case config.NotifyEmail:
		return &email{cfg: n, dial: dial}, nil
	}
	return nil, fmt.Errorf("notify target %s: unknown kind %q", n.Name, n.Kind)
}

// SendTest sends the sample message (tmpl.Sample) to target: `taskfleet
// notify test`.
func SendTest(ctx context.Context, n *config.Notify, dial DialFunc) error {
	s, err := NewSender(n, dial)
	if err != nil {
		return err
	}
	defer s.Close()
	m := tmpl.Sample()
	m.Target = n.Name
	ctx, cancel := context.WithTimeout(ctx, n.Timeout)
	defer cancel()
	return s.Send(ctx, m)
}
