package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/rs/zerolog"
)

// Options configure the API.
type Options struct {
	// Tokens are the accepted bearer tokens. With none, every request is
	// allowed; the daemon then listens on loopback only.
	Tokens []Token
	// Logger receives one debug line per request and the failures of the
	// backend; the zero value logs nothing.
	Logger zerolog.Logger
	// Metrics is served at /metrics (typically promhttp.HandlerFor); nil
	// answers 404 there.
	Metrics http.Handler
	// Edge holds the in-flight cap and the refusal counters; handlers
	// that replace each other (a reload) share one. Nil: a new Edge with
	// DefaultMaxInFlight.
	Edge *Edge
}

// handlerFunc answers a request of an /api2/json endpoint.
type handlerFunc func(r *http.Request, c *caller, p *params) (reply, error)

// route is an endpoint: its method and handler, and the handlers of other
// methods on the same path.
type route struct {
	method string
	handle handlerFunc
	also   map[string]handlerFunc
}

// server routes the endpoints; New puts the edge around it. Handlers log
// through their request's logger (requestOf(r).log), which carries the
// request id.
type server struct {
	b       Backend
	metrics http.Handler
	creds   []credential
	routes  map[string]route
}

// Paths of the endpoints.
const (
	pathList       = "/api2/json/remotes/tasks/list"
	pathStatistics = "/api2/json/remotes/tasks/statistics"
	pathRefresh    = "/api2/json/remotes/tasks/refresh"
	pathTrack      = "/api2/json/remotes/tasks/track"
	pathStatus     = "/api2/json/remotes/status"
	pathReload     = "/api2/json/reload"
	pathEvents     = "/api2/json/remotes/tasks/events"
	pathLog        = "/api2/json/remotes/tasks/log"
	pathMetrics    = "/metrics"
)

// New returns the API's handler serving b: the edge (request ids, the
// request log, limits, the in-flight cap, compression) around the
// endpoints.
func New(b Backend, opts Options) http.Handler {
	e := opts.Edge
	if e == nil {
		e = NewEdge(0)
	}
	return newEdgeHandler(e, opts.Logger, newServer(b, opts))
}

// newServer returns the endpoints' handler, without the edge.
func newServer(b Backend, opts Options) *server {
	s := &server{b: b, metrics: opts.Metrics, creds: newCredentials(opts.Tokens)}
	s.routes = map[string]route{
		pathList:       {method: http.MethodGet, handle: s.list},
		pathStatistics: {method: http.MethodGet, handle: s.statistics},
		pathRefresh:    {method: http.MethodPost, handle: s.refresh},
		pathTrack:      {method: http.MethodPost, handle: s.track, also: map[string]handlerFunc{http.MethodDelete: s.untrack}},
		pathStatus:     {method: http.MethodGet, handle: s.status},
		pathReload:     {method: http.MethodPost, handle: s.reload},
		pathMetrics:    {method: http.MethodGet},
		pathEvents:     {method: http.MethodGet}, // serveEvents
		pathLog:        {method: http.MethodGet}, // serveLog
		PathBackups:    {method: http.MethodGet, handle: s.backups},
	}
	return s
}

// ServeHTTP routes a request: probes first (no token needed), then
// authentication, then the endpoint. The edge has logged the request and
// set its id.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := requestOf(r)
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			q.log.Error().Str("method", clip(r.Method)).Str("path", clip(r.URL.Path)).Interface("panic", v).Msg("handler panicked")
			if rec.status == 0 {
				writeError(rec, internalError(q))
			}
		}
	}()

	path := r.URL.Path
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	if s.probe(rec, r, path) || s.page(rec, r, path) {
		return
	}
	c, aerr := s.authenticate(r)
	if aerr != nil {
		rec.Header().Set("WWW-Authenticate", `Bearer realm="taskfleet"`)
		writeError(rec, aerr)
		return
	}
	q.token = c.token
	rt, ok := s.routes[path]
	if !ok {
		writeError(rec, errorf(http.StatusNotFound, "Path '%s' not found.", clip(path)))
		return
	}
	if h, ok := rt.also[r.Method]; ok {
		rt.handle = h
	} else if r.Method != rt.method && (rt.method != http.MethodGet || r.Method != http.MethodHead) {
		allow := rt.method
		if allow == http.MethodGet {
			allow += ", " + http.MethodHead
		}
		for m := range rt.also {
			allow += ", " + m
		}
		rec.Header().Set("Allow", allow)
		writeError(rec, errorf(http.StatusMethodNotAllowed, "method '%s' not available", clip(r.Method)))
		return
	}
	if path == pathMetrics {
		s.serveMetrics(rec, r, c)
		return
	}
	p, aerr := readParams(w, r)
	if aerr != nil {
		writeError(rec, aerr)
		return
	}
	switch path {
	case pathEvents:
		s.serveEvents(rec, r, c, p)
		return
	case pathLog:
		s.serveLog(rec, r, c, p)
		return
	}
	rep, err := rt.handle(r, c, p)
	if err != nil {
		if errors.Is(err, ErrNotReady) {
			// The service is starting (its cache loads): not a failure.
			rec.Header().Set("Retry-After", "5")
			writeError(rec, errorf(http.StatusServiceUnavailable, "not ready: the service is starting; retry later"))
			return
		}
		if !errors.As(err, &aerr) {
			q.log.Error().Err(err).Str("path", path).Msg("backend failed")
			aerr = internalError(q)
		} else if aerr.status >= 500 {
			// The detail of a 5xx is for the log; the client gets the id.
			q.log.Error().Str("error", aerr.message).Str("path", path).Int("status", aerr.status).Msg("request failed")
			aerr = &apiError{status: aerr.status, message: genericMessage(q)}
		}
		writeError(rec, aerr)
		return
	}
	if rep.list != nil {
		s.writeList(rec, r, q, c, rep.list)
		return
	}
	writeReply(rec, rep)
}

// serveMetrics serves /metrics to callers that may see every remote: the
// metrics name all remotes.
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request, c *caller) {
	switch {
	case c.scoped():
		writeError(w, errorf(http.StatusForbidden, "permission check failed: token %q is limited to some remotes; /metrics needs a token for all remotes", c.token))
	case s.metrics == nil:
		writeError(w, errorf(http.StatusNotFound, "Path '%s' not found.", pathMetrics))
	default:
		s.metrics.ServeHTTP(w, r)
	}
}

// probe answers /livez, /healthz and /readyz, which need no token; it
// reports whether path was one of them.
func (s *server) probe(w http.ResponseWriter, r *http.Request, path string) bool {
	if path != "/livez" && path != "/healthz" && path != "/readyz" {
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeText(w, http.StatusMethodNotAllowed, "method not allowed\n")
		return true
	}
	if path == "/readyz" {
		if err := s.b.Ready(r.Context()); err != nil {
			writeText(w, http.StatusServiceUnavailable, "not ready: "+oneLine(err)+"\n")
			return true
		}
	}
	writeText(w, http.StatusOK, "ok\n")
	return true
}

// statusRecorder remembers the status code written, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the first status code and passes it on.
func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and passes b on.
func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// code is the status written, 200 if the handler wrote nothing.
func (w *statusRecorder) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
