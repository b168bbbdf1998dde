package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// apiError is an error answer: a status code, a message and, for bad
// parameters, the reason per parameter.
type apiError struct {
	status  int
	message string
	params  map[string]string
}

// Error returns the message.
func (e *apiError) Error() string { return e.message }

// errorf returns an *apiError with the given status.
func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, message: fmt.Sprintf(format, args...)}
}

// paramError returns the 400 answer for bad parameters, with Proxmox's
// message.
func paramError(errs map[string]string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: "Parameter verification failed.", params: errs}
}

// badParam returns the 400 answer for one bad parameter.
func badParam(name, format string, args ...any) *apiError {
	return paramError(map[string]string{name: fmt.Sprintf(format, args...)})
}

// envelope is the JSON body of every answer of the /api2/json tree.
type envelope struct {
	Data    any               `json:"data"`
	Total   *int              `json:"total,omitempty"`
	Message string            `json:"message,omitempty"`
	Errors  map[string]string `json:"errors,omitempty"`
}

// reply is a handler's successful answer.
type reply struct {
	data  any
	total *int      // the "total" attribute of lists
	list  *taskList // a list of tasks, streamed; data and total unused
}

// internalError is the answer of a 500: a generic message with the
// request id; the detail goes to the log only.
func internalError(q *request) *apiError {
	return &apiError{status: http.StatusInternalServerError, message: genericMessage(q)}
}

// genericMessage is the message of every 5xx caused by a failure inside
// the daemon.
func genericMessage(q *request) string {
	if q.id == "" {
		return "internal error"
	}
	return "internal error (request id " + q.id + "; the daemon's log has the details)"
}

// marshal encodes v as JSON without escaping <, > and & (the answers are
// JSON, not HTML) and with a final newline.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeJSON writes v as the JSON body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte("{\"data\":null,\"message\":\"encode answer failed\"}\n")
	}
	setWriteDeadline(w)
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeReply(w http.ResponseWriter, r reply) {
	writeJSON(w, http.StatusOK, envelope{Data: r.data, Total: r.total})
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, envelope{Message: e.message, Errors: e.params})
}

// setWriteDeadline gives writing an answer WriteTimeout from now.
func setWriteDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(WriteTimeout))
}

// writeText writes a short plain-text answer (the probes).
func writeText(w http.ResponseWriter, status int, text string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(text)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text))
}
