package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

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
}

// handlerFunc answers a request of an /api2/json endpoint.
type handlerFunc func(r *http.Request, c *caller, p *params) (reply, error)

// route is an endpoint: its method and handler.
type route struct {
	method string
	handle handlerFunc
}

// server is the http.Handler returned by New.
type server struct {
	b       Backend
	log     zerolog.Logger
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
	pathMetrics    = "/metrics"
)

// New returns the API's handler serving b.
func New(b Backend, opts Options) http.Handler {
	s := &server{b: b, log: opts.Logger, metrics: opts.Metrics, creds: newCredentials(opts.Tokens)}
	s.routes = map[string]route{
		pathList:       {method: http.MethodGet, handle: s.list},
		pathStatistics: {method: http.MethodGet, handle: s.statistics},
		pathRefresh:    {method: http.MethodPost, handle: s.refresh},
		pathTrack:      {method: http.MethodPost, handle: s.track},
		pathStatus:     {method: http.MethodGet, handle: s.status},
		pathReload:     {method: http.MethodPost, handle: s.reload},
		pathMetrics:    {method: http.MethodGet},
	}
	return s
}

// ServeHTTP routes a request: probes first (no token needed), then
// authentication, then the endpoint.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	var c *caller
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error().Str("method", r.Method).Str("path", r.URL.Path).Interface("panic", v).Msg("handler panicked")
			if rec.status == 0 {
				writeError(rec, errorf(http.StatusInternalServerError, "internal error"))
			}
		}
		ev := s.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", rec.code()).Dur("duration", time.Since(start))
		if c != nil && c.token != "" {
			ev = ev.Str("token", c.token)
		}
		ev.Msg("request")
	}()

	path := r.URL.Path
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	if s.probe(rec, r, path) {
		return
	}
	var aerr *apiError
	if c, aerr = s.authenticate(r); aerr != nil {
		rec.Header().Set("WWW-Authenticate", `Bearer realm="taskfleet"`)
		writeError(rec, aerr)
		return
	}
	rt, ok := s.routes[path]
	if !ok {
		writeError(rec, errorf(http.StatusNotFound, "Path '%s' not found.", clip(path)))
		return
	}
	if r.Method != rt.method && (rt.method != http.MethodGet || r.Method != http.MethodHead) {
		allow := rt.method
		if allow == http.MethodGet {
			allow += ", " + http.MethodHead
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
	rep, err := rt.handle(r, c, p)
	if err != nil {
		if !errors.As(err, &aerr) {
			s.log.Error().Err(err).Str("path", path).Msg("backend failed")
			aerr = errorf(http.StatusInternalServerError, "%v", err)
		}
		writeError(rec, aerr)
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
	if path == "/readyz" && !s.b.Ready() {
		writeText(w, http.StatusServiceUnavailable, "not ready"+notReadyReason(s.b)+"\n")
		return true
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
