package proxmox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// call is one GET request of the API.
type call struct {
	node  string // node the request is about; "" for remote-wide requests
	path  string // escaped path, e.g. "/api2/json/nodes/pve1/tasks"
	query url.Values
	only  *endpoint // ask exactly this endpoint (discovery); nil: any, by preference
	clock *Clock    // when set, receives the Date header of a 2xx answer
}

// shapeError is a decoder's complaint about a well-formed JSON value of the
// wrong shape; it becomes a MalformedError.
type shapeError struct {
	reason string
	offset int64 // byte offset in the body; -1 when unknown
	err    error // the decoding error behind it, if any
}

func (e *shapeError) Error() string { return e.reason }

// get sends cl and decodes the answer with decode, which reads exactly one
// JSON value from dec. It holds one of the remote's slots and one global
// permit from before the request until the body is read.
//
// Endpoints are tried in order (see Client.order) as long as they cannot be
// connected to: a refused or timed-out dial, a failed handshake, a refused
// certificate. Any answer, or a failure after the request was sent, ends the
// call: a GET that reached a server is not repeated elsewhere. When every
// endpoint fails, the error of the first is returned, unless one refused
// its certificate, which an administrator must see.
func (c *Client) get(ctx context.Context, cl call, decode func(b *body, target string) error) error {
	if c.closed.Load() {
		return fmt.Errorf("%s: %w", location(c.cfg.Remote, cl.node, ""), ErrClosed)
	}
	if err := c.acquire(ctx); err != nil {
		if ctx.Err() != nil {
			return &CanceledError{Remote: c.cfg.Remote, Node: cl.node, Err: ctx.Err()}
		}
		return fmt.Errorf("%s: acquire global permit: %w", location(c.cfg.Remote, cl.node, ""), err)
	}
	defer c.release()

	order := []*endpoint{cl.only}
	if cl.only == nil {
		order = c.order(cl.node)
	}
	var first, cert error
	for _, ep := range order {
		err := c.attempt(ctx, ep, cl, decode)
		if err == nil || !connectFailure(err) {
			c.reached(ep)
			return err
		}
		c.failed(ep, err)
		if first == nil {
			first = err
		}
		var cm *CertMismatchError
		if cert == nil && errors.As(err, &cm) {
			cert = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if cert != nil {
		return cert
	}
	return first
}

// attempt performs cl against one endpoint.
func (c *Client) attempt(ctx context.Context, ep *endpoint, cl call, decode func(b *body, target string) error) error {
	target := ep.base + cl.path
	full := target
	if len(cl.query) > 0 {
		full += "?" + cl.query.Encode()
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, full, nil)
	if err != nil {
		return fmt.Errorf("%s: build request: %w", location(c.cfg.Remote, cl.node, target), err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Encoding", "gzip") // decompressed by decoded (gunzip.go)
	req.Header.Set("User-Agent", "taskfleet")
	c.stats.requests.Add(1)
	if obs := c.cfg.ObserveRequest; obs != nil {
		start := time.Now()
		defer func() { obs(time.Since(start)) }()
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(ctx, rctx, cl.node, target, err)
	}
	defer drainClose(resp.Body)
	body, release := decoded(resp)
	defer release()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.statusError(cl.node, target, resp, body)
	}
	if cl.clock != nil {
		*cl.clock = readClock(resp.Header)
	}
	if hook := c.cfg.BeforeDecode; hook != nil {
		hook(cl.node)
	}
	return c.decodeBody(ctx, rctx, cl.node, target, body, decode)
}

// drainClose reads a little of what is left of a body, so that a small
// remainder does not cost the connection, and closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	_ = body.Close()
}

// transportError classifies an error of http.Client.Do.
func (c *Client) transportError(ctx, rctx context.Context, node, target string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its text repeats the URL with the query
	}
	r := c.cfg.Remote
	if ctx.Err() != nil {
		return &CanceledError{Remote: r, Node: node, Endpoint: target, Err: ctx.Err()}
	}
	var ce *connectError
	if errors.As(err, &ce) {
		if seen, expected, cause, ok := certError(ce.err); ok {
			return &CertMismatchError{Remote: r, Node: node, Endpoint: target, Seen: seen, Expected: expected, Err: cause}
		}
		if isTimeout(ce.err) {
			return &TimeoutError{Remote: r, Node: node, Endpoint: target, Phase: ce.phase, After: ce.timeout, Err: notContext(ce.err)}
		}
		return &UnreachableError{Remote: r, Node: node, Endpoint: target, Phase: ce.phase, Err: ce.err}
	}
	if rctx.Err() != nil {
		return &TimeoutError{Remote: r, Node: node, Endpoint: target, Phase: "request", After: c.cfg.RequestTimeout}
	}
	if isTimeout(err) {
		return &TimeoutError{Remote: r, Node: node, Endpoint: target, Phase: "response headers", After: c.cfg.ResponseHeaderTimeout, Err: notContext(err)}
	}
	return &UnreachableError{Remote: r, Node: node, Endpoint: target, Phase: "request", Err: err}
}

// connectFailure reports whether err says the endpoint could not be
// connected to (so the request never reached a server).
func connectFailure(err error) bool {
	var (
		u  *UnreachableError
		t  *TimeoutError
		cm *CertMismatchError
	)
	switch {
	case errors.As(err, &cm):
		return true
	case errors.As(err, &u):
		return connectPhase(u.Phase)
	case errors.As(err, &t):
		return connectPhase(t.Phase)
	}
	return false
}

// connectPhase reports whether phase is before the request was sent.
func connectPhase(phase string) bool { return phase == "dial" || phase == "tls handshake" }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// notContext drops an error that would make a TimeoutError match
// context.DeadlineExceeded, which is reserved for the caller's deadline.
func notContext(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// statusError turns a non-2xx answer into a typed error.
func (c *Client) statusError(node, target string, resp *http.Response, in io.Reader) error {
	body, _ := io.ReadAll(io.LimitReader(in, errorBodyLimit))
	reason := strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)))
	msg := c.scrub(errorMessage(reason, body))
	r := c.cfg.Remote
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return &AuthError{Remote: r, Node: node, Endpoint: target, StatusCode: resp.StatusCode, Message: msg}
	case 595, 596:
		return &NodeOfflineError{Remote: r, Node: node, Endpoint: target, StatusCode: resp.StatusCode, Reason: msg}
	}
	return &ServerError{Remote: r, Node: node, Endpoint: target, StatusCode: resp.StatusCode, Message: msg}
}

// scrub removes the token secret from text that came from the server, in
// case a server ever echoes it.
func (c *Client) scrub(s string) string {
	return strings.ReplaceAll(s, c.cfg.TokenSecret, "[redacted]")
}

// body is an answer's body as a call's decode function reads it: one JSON
// value, through either decoder.
type body struct {
	r    io.Reader
	dec  *json.Decoder     // made by json
	text *jsontext.Decoder // made by tokens
}

// json returns an encoding/json decoder of the body.
func (b *body) json() *json.Decoder {
	if b.dec == nil {
		b.dec = json.NewDecoder(b.r)
	}
	return b.dec
}

// tokens returns a token decoder of the body (one pass, no reflection: for
// the long lists). It allows what encoding/json allows: duplicate names
// (the last wins) and invalid UTF-8.
func (b *body) tokens() *jsontext.Decoder {
	if b.text == nil {
		b.text = jsontext.NewDecoder(b.r, textOptions...)
	}
	return b.text
}

// textOptions are the token decoders' options: what encoding/json allows.
var textOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// rest returns what follows the decoded value.
func (b *body) rest() io.Reader {
	switch {
	case b.dec != nil:
		return io.MultiReader(b.dec.Buffered(), b.r)
	case b.text != nil:
		return io.MultiReader(bytes.NewReader(b.text.UnreadBuffer()), b.r)
	}
	return b.r
}

// decodeBody decodes a 2xx body through the cap. Only white space may follow
// the JSON value; reading it to the end lets the connection be reused.
func (c *Client) decodeBody(ctx, rctx context.Context, node, target string, in io.Reader, decode func(b *body, target string) error) error {
	cr := newCapReader(in, c.cfg.MaxBodyBytes, &c.stats.bodyBytes)
	b := &body{r: cr}
	err := decode(b, target)
	if err == nil {
		err = onlySpace(b.rest())
	}
	if err == nil {
		return nil
	}
	r := c.cfg.Remote
	var (
		syn   *json.SyntaxError
		tsyn  *jsontext.SyntacticError
		typ   *json.UnmarshalTypeError
		shape *shapeError
	)
	readErr := cr.err
	switch {
	case errors.Is(readErr, errBodyTooLarge):
		return &BodyTooLargeError{Remote: r, Node: node, Endpoint: target, Limit: c.cfg.MaxBodyBytes}
	case ctx.Err() != nil:
		return &CanceledError{Remote: r, Node: node, Endpoint: target, Err: ctx.Err()}
	case rctx.Err() != nil:
		return &TimeoutError{Remote: r, Node: node, Endpoint: target, Phase: "request", After: c.cfg.RequestTimeout}
	case badGzip(readErr):
		return &MalformedError{Remote: r, Node: node, Endpoint: target, Offset: -1, Reason: "invalid gzip stream", Err: readErr}
	case readErr != nil && !errors.Is(readErr, io.ErrUnexpectedEOF):
		return &UnreachableError{Remote: r, Node: node, Endpoint: target, Phase: "body", Err: readErr}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &MalformedError{Remote: r, Node: node, Endpoint: target, Offset: cr.read, Reason: "truncated body", Err: err}
	case errors.Is(err, io.EOF):
		return &MalformedError{Remote: r, Node: node, Endpoint: target, Offset: cr.read, Reason: "empty body"}
	case errors.As(err, &syn):
		return &MalformedError{Remote: r, Node: node, Endpoint: target, Offset: -1, Reason: "invalid JSON", Err: err}
	case errors.As(err, &tsyn):
		return &MalformedError{Remote: r, Node: node, Endpoint: target, Offset: tsyn.ByteOffset, Reason: "invalid JSON", Err: err}
	case errors.As(err, &typ):
		return &MalformedError{Remote: r, Node: node, Endpoint: target, Offset: typ.Offset, Reason: typeMismatch(typ)}
	case errors.As(err, &shape):
		return &MalformedError{Remote: r, Node: node, Endpoint: target, Offset: shape.offset, Reason: shape.reason, Err: shape.err}
	}
	// An UnmarshalJSON method refused a value.
	return &MalformedError{Remote: r, Node: node, Endpoint: target, Offset: -1, Reason: "invalid value", Err: err}
}

// typeMismatch describes a JSON value of the wrong type in JSON terms.
func typeMismatch(e *json.UnmarshalTypeError) string {
	want := "a different type"
	if e.Type != nil {
		switch e.Type.Kind() {
		case reflect.Slice, reflect.Array:
			want = "array"
		case reflect.Struct, reflect.Map:
			want = "object"
		case reflect.String:
			want = "string"
		case reflect.Bool:
			want = "boolean"
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
			want = "number"
		}
	}
	field := e.Field
	if field == "" {
		field = "top level"
	}
	return fmt.Sprintf("%s: got JSON %s, want %s", field, e.Value, want)
}

// errTrailing reports data after the JSON value.
var errTrailing = &shapeError{reason: "data after the JSON value", offset: -1}

// onlySpace reads r to the end and fails if anything but JSON white space
// comes.
func onlySpace(r io.Reader) error {
	var buf [512]byte
	for {
		n, err := r.Read(buf[:])
		for _, b := range buf[:n] {
			if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
				return errTrailing
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// decodeData decodes the {"data": ...} envelope into out and returns the
// "total" attribute (-1 when absent). A missing or null data is malformed.
func decodeData[T any](dec *json.Decoder, out *T) (total int, err error) {
	var env envelope[T]
	if err := dec.Decode(&env); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			// One value decoded from the start: the offset is exact.
			return 0, &shapeError{reason: "invalid JSON", offset: syn.Offset, err: err}
		}
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && env.Data != nil {
			// The decoding went on past the value of the wrong type:
			// out holds the rest, for callers that take what they can.
			*out = *env.Data
		}
		return 0, err
	}
	if env.Data == nil {
		return 0, &shapeError{reason: `no "data" in the answer`, offset: -1}
	}
	*out = *env.Data
	if !env.Total.ok {
		return -1, nil
	}
	return int(env.Total.v), nil
}
