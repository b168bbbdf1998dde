package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// TaskStreamer is implemented by a Backend that can hand out a list
// without building it in memory. The list endpoint then encodes each task
// straight from the snapshot to the connection, so that limit=0 over
// millions of tasks needs memory for a chunk of the answer only.
type TaskStreamer interface {
	// StreamTasks is Backend.Tasks as an iterator: it returns the number
	// of all matching tasks and the tasks of the page f selects, newest
	// first, read from one immutable snapshot as the iterator runs. The
	// iterator is used once; stopping it early is allowed.
	StreamTasks(ctx context.Context, f task.Filter) (total int, tasks iter.Seq[task.Task], err error)
}

// streamChunkBytes is the size of the chunks a list is written in; the
// write deadline is renewed for each.
const streamChunkBytes = 32 << 10

// Formats of a list answer.
const (
	formatJSON = "json"
	formatCSV  = "csv"
)

// taskList is a list answer, written by writeList.
type taskList struct {
	total  int
	tasks  iter.Seq[task.Task]
	format string // formatJSON or formatCSV
}

// listTasks returns the tasks of f from the backend, streamed when it
// can.
func (s *server) listTasks(ctx context.Context, f task.Filter) (int, iter.Seq[task.Task], error) {
	if st, ok := s.b.(TaskStreamer); ok {
		return st.StreamTasks(ctx, f)
	}
	page, err := s.b.Tasks(ctx, f)
	if err != nil {
		return 0, nil, err
	}
	return page.Total, slices.Values(page.Tasks), nil
}

// listFormat returns the format a list request asks for: the format
// parameter ("json" or "csv") or else the Accept header (text/csv
// preferred over JSON).
func listFormat(r *http.Request, p *params) string {
	switch v, given := p.single("format"); {
	case !given:
	case v == formatJSON || v == formatCSV:
		return v
	default:
		p.fail("format", "value '%s' does not have a value in the enumeration 'json, csv'", clip(v))
		return formatJSON
	}
	if prefersCSV(r.Header.Values("Accept")) {
		return formatCSV
	}
	return formatJSON
}

// writeList writes a list answer: the JSON envelope {"data":[...],
// "total":N} or CSV with a header row, one task at a time, renewing the
// write deadline for every chunk. The total is also in the X-Total-Count
// header. A task outside the caller's scope (a backend bug) is dropped and
// logged. Once the status is sent an error can only end the answer early,
// which the client sees as a truncated body.
func (s *server) writeList(w http.ResponseWriter, r *http.Request, q *request, c *caller, l *taskList) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Total-Count", strconv.Itoa(l.total))
	if l.format == formatCSV {
		h.Set("Content-Type", "text/csv; charset=utf-8; header=present")
		h.Set("Content-Disposition", `attachment; filename="tasks.csv"`)
	} else {
		h.Set("Content-Type", "application/json;charset=UTF-8")
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	dw := &deadlineWriter{w: w, rc: http.NewResponseController(w)}
	bw := bufio.NewWriterSize(dw, streamChunkBytes)
	var enc listEncoder
	if l.format == formatCSV {
		enc = newCSVEncoder(bw)
	} else {
		enc = newJSONEncoder(bw, l.total)
	}
	err := enc.begin()
	n := 0
	for t := range l.tasks {
		if err != nil {
			break
		}
		// The backend applies the scope; this is the last line of defense.
		if !c.allows(t.Remote) {
			q.log.Error().Str("remote", t.Remote).Str("token", c.token).Msg("backend returned a task outside the token's scope; dropped")
			continue
		}
		err = enc.task(NewTaskListItem(t))
		n++
	}
	if err == nil {
		err = enc.end()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		q.log.Debug().Err(err).Int("tasks", n).Msg("list answer cut short")
	}
}

// listEncoder writes the rows of a list answer.
type listEncoder interface {
	begin() error
	task(TaskListItem) error
	end() error
}

// jsonEncoder writes the JSON envelope of a list.
type jsonEncoder struct {
	w     *bufio.Writer
	enc   *json.Encoder
	total int
	first bool
}

func newJSONEncoder(w *bufio.Writer, total int) *jsonEncoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &jsonEncoder{w: w, enc: enc, total: total, first: true}
}

func (e *jsonEncoder) begin() error {
	_, err := e.w.WriteString(`{"data":[`)
	return err
}

func (e *jsonEncoder) task(it TaskListItem) error {
	if !e.first {
		if err := e.w.WriteByte(','); err != nil {
			return err
		}
	}
	e.first = false
	return e.enc.Encode(it) // followed by a newline: one task per line
}

func (e *jsonEncoder) end() error {
	_, err := e.w.WriteString(`],"total":` + strconv.Itoa(e.total) + "}\n")
	return err
}

// deadlineWriter renews the connection's write deadline before each
// write, so that a long answer is limited per chunk rather than as a
// whole.
type deadlineWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (d *deadlineWriter) Write(b []byte) (int, error) {
	if err := d.rc.SetWriteDeadline(time.Now().Add(StreamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, err
	}
	return d.w.Write(b)
}
