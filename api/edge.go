package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzhttp"
	"github.com/rs/zerolog"
)

// Limits of a request, checked before anything else. They follow
// pveproxy's (8 KiB per header line, 64 headers).
const (
	// MaxURIBytes caps the request target (path and query string): a
	// longer one is answered 414.
	MaxURIBytes = 8 << 10
	// MaxHeaderLineBytes caps one header (name and value): a longer one is
	// answered 431.
	MaxHeaderLineBytes = 8 << 10
	// MaxHeaderFields caps the number of header lines: more are answered
	// 431.
	MaxHeaderFields = 64
	// DefaultMaxInFlight is the default cap on requests in flight; more
	// are answered 503 with Retry-After.
	DefaultMaxInFlight = 128
	// MaxEventStreams caps the open event streams. They last as long as
	// their clients stay, so they have a cap of their own instead of
	// taking slots of the in-flight cap; more are answered 503.
	MaxEventStreams = 256
	// gzipMinBytes: smaller answers are not compressed.
	gzipMinBytes = 1 << 10
)

// Edge is the state of the API's edge that outlives one handler: the
// in-flight cap (the daemon builds a new handler on every reload, and the
// requests of the old one still count) and the counters of refused
// requests. Its methods are safe for concurrent use.
type Edge struct {
	slots   chan struct{} // one per request in flight
	streams chan struct{} // one per open event stream

	prefix string        // request ids: a random prefix per process
	seq    atomic.Uint64 // and a counter

	overloaded  atomic.Uint64 // 503: too many requests in flight
	uriTooLong  atomic.Uint64 // 414
	headerLarge atomic.Uint64 // 431
	internal    atomic.Uint64 // 500 answered
}

// NewEdge returns an Edge allowing maxInFlight requests at once (at most
// DefaultMaxInFlight when maxInFlight <= 0).
func NewEdge(maxInFlight int) *Edge {
	if maxInFlight <= 0 {
		maxInFlight = DefaultMaxInFlight
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return &Edge{slots: make(chan struct{}, maxInFlight), streams: make(chan struct{}, MaxEventStreams), prefix: hex.EncodeToString(b[:])}
}

// Refused returns the number of requests refused or failed at the edge
// since start, by reason: "in_flight" (503), "uri_too_long" (414),
// "header_too_large" (431) and "internal" (500).
func (e *Edge) Refused() map[string]uint64 {
	return map[string]uint64{
		"in_flight":        e.overloaded.Load(),
		"uri_too_long":     e.uriTooLong.Load(),
		"header_too_large": e.headerLarge.Load(),
		"internal":         e.internal.Load(),
	}
}

// InFlight returns the number of requests being served.
func (e *Edge) InFlight() int { return len(e.slots) }

// nextID returns a new request id: the process's prefix and a counter.
func (e *Edge) nextID() string {
	return e.prefix + "-" + strconv.FormatUint(e.seq.Add(1), 36)
}

// request is what the layers of one request share: its id, for every
// answer and log line, and the token that authenticated it.
type request struct {
	id    string
	token string // token id, set by the server after authentication
	log   zerolog.Logger
}

type requestKey struct{}

// requestOf returns the request state of r; a request that did not pass
// through the edge (a test calling the server directly) gets a fresh one.
func requestOf(r *http.Request) *request {
	if q, ok := r.Context().Value(requestKey{}).(*request); ok {
		return q
	}
	return &request{}
}

// gzipWrap compresses answers over gzipMinBytes for clients that accept
// gzip. Compressed request bodies are not accepted (no decompression
// bombs).
var gzipWrap = func() func(http.Handler) http.HandlerFunc {
	w, err := gzhttp.NewWrapper(gzhttp.MinSize(gzipMinBytes), gzhttp.EnableZstd(false))
	if err != nil {
		panic("gzhttp options: " + err.Error()) // constant options: a programming error
	}
	return w
}()

// edgeHandler is the outer layer of the API: request id, request log,
// limits, in-flight cap and compression around the server.
type edgeHandler struct {
	edge  *Edge
	log   zerolog.Logger
	next  http.Handler // the server, compressed
	plain http.Handler // the server, for event streams
}

func newEdgeHandler(e *Edge, log zerolog.Logger, s http.Handler) *edgeHandler {
	return &edgeHandler{edge: e, log: log, next: gzipWrap(s), plain: s}
}

// ServeHTTP gives r an id (the X-Request-Id header of the answer and the
// request_id of every log line), logs one line when it is answered, and
// refuses it when it is too large or too many requests are in flight.
func (h *edgeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	q := &request{id: h.edge.nextID()}
	q.log = h.log.With().Str("request_id", q.id).Logger()
	w.Header().Set("X-Request-Id", q.id)
	r = r.WithContext(context.WithValue(r.Context(), requestKey{}, q))
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		ev := q.log.Debug().Str("method", clip(r.Method)).Str("path", clip(r.URL.Path)).
			Int("status", rec.code()).Int64("duration_ms", time.Since(start).Milliseconds())
		if q.token != "" {
			ev = ev.Str("token", q.token)
		}
		ev.Msg("request")
		if rec.code() == http.StatusInternalServerError {
			h.edge.internal.Add(1)
		}
	}()

	if aerr := h.checkSize(r); aerr != nil {
		writeError(rec, aerr)
		return
	}
	switch {
	case r.URL.Path == pathEvents:
		// A stream is neither compressed (every event is flushed as it
		// comes) nor counted in flight: it has a cap of its own.
		if !h.acquire(rec, h.edge.streams, "event streams open") {
			return
		}
		defer func() { <-h.edge.streams }()
		h.plain.ServeHTTP(rec, r)
		return
	case !isProbe(r.URL.Path):
		if !h.acquire(rec, h.edge.slots, "requests in flight") {
			return
		}
		defer func() { <-h.edge.slots }()
	}
	h.next.ServeHTTP(rec, r)
}

// acquire takes a slot of sem, or answers 503 with Retry-After when all
// are taken.
func (h *edgeHandler) acquire(w http.ResponseWriter, sem chan struct{}, what string) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
		h.edge.overloaded.Add(1)
		w.Header().Set("Retry-After", "1")
		writeError(w, errorf(http.StatusServiceUnavailable, "too many %s (%d): retry later", what, cap(sem)))
		return false
	}
}

// checkSize refuses a request target longer than MaxURIBytes (414) and
// headers beyond MaxHeaderFields or MaxHeaderLineBytes (431), with JSON
// errors. (net/http itself refuses requests whose head is over the
// server's MaxHeaderBytes, with a plain-text 431, before this runs.)
func (h *edgeHandler) checkSize(r *http.Request) *apiError {
	if n := len(r.RequestURI); n > MaxURIBytes {
		h.edge.uriTooLong.Add(1)
		return errorf(http.StatusRequestURITooLong, "request target of %d bytes: the limit is %d", n, MaxURIBytes)
	}
	fields := 0
	for name, values := range r.Header {
		for _, v := range values {
			fields++
			if len(name)+len(v) > MaxHeaderLineBytes {
				h.edge.headerLarge.Add(1)
				return errorf(http.StatusRequestHeaderFieldsTooLarge, "header '%s' of %d bytes: the limit is %d", clip(name), len(name)+len(v), MaxHeaderLineBytes)
			}
		}
	}
	if fields > MaxHeaderFields {
		h.edge.headerLarge.Add(1)
		return errorf(http.StatusRequestHeaderFieldsTooLarge, "%d header lines: the limit is %d", fields, MaxHeaderFields)
	}
	return nil
}

// isProbe reports whether path is one of the probes, which are not
// counted in flight: an orchestrator's liveness check must not fail
// because the API is busy.
func isProbe(path string) bool {
	return path == "/livez" || path == "/healthz" || path == "/readyz"
}

// Server timeouts and limits; ConfigureServer applies them.
const (
	// ReadHeaderTimeout bounds reading a request's head: a client
	// trickling its headers is cut off after it.
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading a whole request, body included: a body
	// trickled slower is answered 408.
	ReadTimeout = 20 * time.Second
	// WriteTimeout bounds a request from the end of its head to the end
	// of its answer. The API renews it when it starts writing (the work
	// before is bounded by the backend and the request's context: a
	// refresh with wait may take minutes): a JSON answer gets
	// WriteTimeout from then, a streamed list StreamWriteTimeout per
	// chunk, so a long list that makes progress is not cut, and a stalled
	// client is. Other answers (/metrics) get it from the request's head.
	WriteTimeout = 60 * time.Second
	// StreamWriteTimeout bounds writing one chunk of a streamed answer.
	StreamWriteTimeout = 30 * time.Second
	// IdleTimeout closes a kept-alive connection without requests.
	IdleTimeout = 2 * time.Minute
	// MaxHeaderBytes is net/http's cap on a request's head (request line
	// and headers). It is above MaxURIBytes and the header limits so that
	// the API answers those with JSON errors; beyond it net/http answers
	// a plain-text 431.
	MaxHeaderBytes = 1<<20 + 64<<10
)

// ConfigureServer sets the API's timeouts and limits on srv.
func ConfigureServer(srv *http.Server) {
	srv.ReadHeaderTimeout = ReadHeaderTimeout
	srv.ReadTimeout = ReadTimeout
	srv.WriteTimeout = WriteTimeout
	srv.IdleTimeout = IdleTimeout
	srv.MaxHeaderBytes = MaxHeaderBytes
}
