package notify

import (
	"github.com/taskfleet/taskfleet/events"
)

// The notifier's messages. gen is the notifier instance's generation: a
// message from a goroutine or timer of an earlier instance (before a
// restart) is ignored.

// eventReceived: the subscription delivered an event.
type eventReceived struct {
	gen uint64
	ev  events.Event
}

// subscriptionEnded: the subscription's channel was closed (the hub
// dropped a slow subscriber, or it closed).
type subscriptionEnded struct {
	gen uint64
	err error
}

// resubscribe: time to subscribe again after a failed attempt.
type resubscribe struct{ gen uint64 }

// windowClosed: the grouping window (or a retry's backoff) ended: send.
type windowClosed struct{ gen uint64 }

// deliveryFinished: a delivery goroutine ended; its outcome is in the
// notifier's sendDone.
type deliveryFinished struct{ gen uint64 }

// checkStale: time to ask the guest source for stale guests.
type checkStale struct{ gen uint64 }
