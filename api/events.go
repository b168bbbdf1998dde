package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/events"
)

// EventBackend is implemented by a Backend that serves the event stream
// (GET /api2/json/remotes/tasks/events); without it the endpoint answers
// 501.
type EventBackend interface {
	// Subscribe starts a subscription to the task changes (see package
	// events). It fails with an error wrapping ErrNotReady while the
	// service starts, and with ctx's error when ctx ends first.
	Subscribe(ctx context.Context, opts events.SubscribeOptions) (*events.Subscription, error)
}

// ErrNotReady is returned (wrapped) by a Backend that cannot answer yet
// (the service is starting); the API answers 503 with Retry-After.
var ErrNotReady = errors.New("not ready")

// Timing of the event stream; variables for tests.
var (
	// heartbeatEvery is how often an idle stream gets a comment line, so
	// that proxies and clients see it alive.
	heartbeatEvery = 15 * time.Second
	// eventWriteTimeout bounds each write to the client: a client that
	// does not read is disconnected.
	eventWriteTimeout = 10 * time.Second
)

// eventRetryMillis is the reconnection delay the stream suggests (SSE's
// "retry" field).
const eventRetryMillis = 2000

// EventData is the JSON data of a task event (started or finished) of the
// stream.
type EventData struct {
	Type string       `json:"type"` // "started" or "finished"
	Task TaskListItem `json:"task"`
}

// ReloadData is the JSON data of a reload event.
type ReloadData struct {
	Type   string `json:"type"` // "reload"
	Reason string `json:"reason"`
}

// HelloData is the JSON data of the hello event that opens a stream.
type HelloData struct {
	Type    string `json:"type"`    // "hello"
	LastID  string `json:"last_id"` // the newest event's id when the stream opened
	Resumed bool   `json:"resumed"` // the stream resumes after Last-Event-ID
}

// serveEvents serves GET /api2/json/remotes/tasks/events: a Server-Sent
// Events stream of task changes with the list's filters.
func (s *server) serveEvents(w http.ResponseWriter, r *http.Request, c *caller, p *params) {
	eb, ok := s.b.(EventBackend)
	if !ok {
		writeError(w, errorf(http.StatusNotImplemented, "this server has no event stream"))
		return
	}
	for _, name := range []string{"start", "limit"} {
		if _, given := p.values[name]; given {
			p.fail(name, "not a parameter of the event stream (it has no pages)")
		}
	}
	f, err := s.filter(r.Context(), p, c)
	if err != nil {
		writeError(w, asAPIError(err))
		return
	}
	opts := events.SubscribeOptions{Match: func(e *events.Event) bool { return e.Matches(&f) }}
	if h := r.Header.Get("Last-Event-ID"); h != "" {
		id, err := strconv.ParseUint(strings.TrimSpace(h), 10, 64)
		if err != nil {
			writeError(w, errorf(http.StatusBadRequest, "invalid Last-Event-ID header '%s': want the id of an event of this stream", clip(h)))
			return
		}
		opts.Resume, opts.After = true, id
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return
	}
	sub, err := eb.Subscribe(r.Context(), opts)
	if err != nil {
		if r.Context().Err() != nil {
			return // the client left
		}
		w.Header().Set("Retry-After", "5")
		if !errors.Is(err, ErrNotReady) {
			requestOf(r).log.Error().Err(err).Msg("subscribe to events")
		}
		writeError(w, errorf(http.StatusServiceUnavailable, "event stream not available yet; retry"))
		return
	}
	defer sub.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	st := &eventStream{w: w, rc: http.NewResponseController(w)}
	hello := HelloData{Type: "hello", LastID: strconv.FormatUint(sub.Last, 10), Resumed: opts.Resume}
	id := sub.Last
	if opts.Resume {
		id = 0 // the replay follows: the client's resume point stays where it was
	}
	if st.send(id, "hello", hello, fmt.Sprintf("retry: %d\n", eventRetryMillis)) != nil {
		return
	}
	beat := time.NewTicker(heartbeatEvery)
	defer beat.Stop()
	for {
		select {
		case e, open := <-sub.C:
			if !open {
				// Dropped (too slow) or the hub closed: the client
				// reconnects with Last-Event-ID and resumes from the ring.
				return
			}
			if st.event(&e, c) != nil {
				return
			}
		case <-beat.C:
			if st.write(": heartbeat\n\n") != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// eventStream writes the events of one stream, each with a deadline.
type eventStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// event writes a task event or a reload.
func (st *eventStream) event(e *events.Event, c *caller) error {
	if e.Type == events.Reload {
		return st.send(e.ID, string(e.Type), ReloadData{Type: string(e.Type), Reason: e.Reason}, "")
	}
	if !c.allows(e.Task.Remote) {
		return nil // the backend's Match applies the scope; the last line of defense
	}
	return st.send(e.ID, string(e.Type), EventData{Type: string(e.Type), Task: NewTaskListItem(e.Task)}, "")
}

// send writes one event: its id (none when 0), name and JSON data.
func (st *eventStream) send(id uint64, name string, data any, prefix string) error {
	body, err := json.Marshal(data)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(prefix)
	if id != 0 {
		fmt.Fprintf(&b, "id: %d\n", id)
	}
	fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", name, body)
	return st.write(b.String())
}

// write writes text and flushes it, or fails after eventWriteTimeout.
func (st *eventStream) write(text string) error {
	// A server without deadlines (a test's recorder) still streams.
	_ = st.rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
	if _, err := st.w.Write([]byte(text)); err != nil {
		return err
	}
	return st.rc.Flush()
}

// asAPIError returns err as an *apiError, or a 500.
func asAPIError(err error) *apiError {
	var aerr *apiError
	if errors.As(err, &aerr) {
		return aerr
	}
	return errorf(http.StatusInternalServerError, "internal error")
}
