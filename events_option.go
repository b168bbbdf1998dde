package taskfleet

import (
	"github.com/taskfleet/taskfleet/actors"
	"github.com/taskfleet/taskfleet/events"
)

// WithEvents makes the cache writer publish its changes to h (see package
// events): the API's event stream, the task-log keeper and notifiers
// subscribe there. The host owns h and closes it after Stop.
func WithEvents(h *events.Hub) Option {
	return func(o *actors.Options) { o.Events = h }
}
