package proxmox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrClosed is returned by calls made after [Client.Close].
var ErrClosed = errors.New("proxmox client closed")

// location renders where a request went: the remote, the node when there is
// one, and the endpoint URL (scheme, host and path; never the query).
func location(remote, node, endpoint string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "remote %q", remote)
	if node != "" {
		fmt.Fprintf(&b, " node %q", node)
	}
	if endpoint != "" {
		b.WriteString(" ")
		b.WriteString(endpoint)
	}
	return b.String()
}

// UnreachableError means the endpoint could not be reached or the connection
// failed before a complete response arrived: a refused or failed dial, a TLS
// handshake that did not complete, a connection reset.
type UnreachableError struct {
	Remote   string // remote id
	Node     string // node the request was for; "" for remote-wide requests
	Endpoint string // URL requested, without the query
	Phase    string // "dial", "tls handshake", "request" (no answer) or "body" (cut off while reading it)
	Err      error  // the network error
}

// Error describes the failure with remote, node and endpoint.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%s: unreachable (%s): %v", location(e.Remote, e.Node, e.Endpoint), e.Phase, e.Err)
}

// Unwrap returns the network error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// TimeoutError means one of the client's own timeouts expired. It does not
// match context.DeadlineExceeded: a deadline of the caller's context is
// reported as a [CanceledError] instead, so the two stay distinguishable.
type TimeoutError struct {
	Remote   string
	Node     string
	Endpoint string
	Phase    string        // "dial", "tls handshake", "response headers" or "request"
	After    time.Duration // the timeout that expired
	Err      error         // the underlying error, if any
}

// Error describes the failure with remote, node and endpoint.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s: timeout (%s) after %v", location(e.Remote, e.Node, e.Endpoint), e.Phase, e.After)
}

// Unwrap returns the underlying error (a network timeout), never a context error.
func (e *TimeoutError) Unwrap() error { return e.Err }

// CanceledError means the caller's context was canceled or reached its
// deadline. It unwraps to the context's error, so
// errors.Is(err, context.Canceled) holds.
type CanceledError struct {
	Remote   string
	Node     string
	Endpoint string // "" when the request had not been sent yet
	Err      error  // ctx.Err()
}

// Error describes the failure with remote, node and endpoint.
func (e *CanceledError) Error() string {
	return fmt.Sprintf("%s: %v", location(e.Remote, e.Node, e.Endpoint), e.Err)
}

// Unwrap returns the context's error.
func (e *CanceledError) Unwrap() error { return e.Err }

// AuthError is an HTTP 401 or 403 answer: a bad or unknown API token, or a
// token without the privileges for the path.
type AuthError struct {
	Remote     string
	Node       string
	Endpoint   string
	StatusCode int    // 401 or 403
	Message    string // reason phrase and server message
}

// Error describes the failure with remote, node and endpoint.
func (e *AuthError) Error() string {
	return fmt.Sprintf("%s: authentication failed: HTTP %d %s", location(e.Remote, e.Node, e.Endpoint), e.StatusCode, e.Message)
}

// NodeOfflineError is PVE's 595 or 596: the node that received the request
// could not reach the node it proxies to. The reason phrase holds the socket
// error ("Connection refused", "No route to host"); the body is empty.
// StatusCode 0 means no request was sent: the cluster's node list says the
// node is offline.
type NodeOfflineError struct {
	Remote     string
	Node       string
	Endpoint   string
	StatusCode int    // 595 or 596; 0 when the node list says offline
	Reason     string // the socket error from the status line
}

// Error describes the failure with remote, node and endpoint.
func (e *NodeOfflineError) Error() string {
	if e.StatusCode == 0 {
		return fmt.Sprintf("%s: node offline: %s", location(e.Remote, e.Node, e.Endpoint), e.Reason)
	}
	return fmt.Sprintf("%s: node offline: HTTP %d %s", location(e.Remote, e.Node, e.Endpoint), e.StatusCode, e.Reason)
}

// ServerError is any other answer that is not 2xx. Message holds the reason
// phrase plus the server's own text: the "message" and per-parameter
// "errors" of a PVE JSON error, or the plain-text body of a PBS error.
type ServerError struct {
	Remote     string
	Node       string
	Endpoint   string
	StatusCode int
	Message    string
}

// Error describes the failure with remote, node and endpoint.
func (e *ServerError) Error() string {
	return fmt.Sprintf("%s: server error: HTTP %d %s", location(e.Remote, e.Node, e.Endpoint), e.StatusCode, e.Message)
}

// MalformedError means a 2xx answer whose body is not the expected JSON: a
// syntax error, a truncated body, a value of the wrong shape.
type MalformedError struct {
	Remote   string
	Node     string
	Endpoint string
	Offset   int64  // byte offset in the decompressed body where the bad value starts; -1 when unknown
	Reason   string // what is wrong
	Err      error  // the decoding error, if any
}

// Error describes the failure with remote, node and endpoint.
func (e *MalformedError) Error() string {
	at := ""
	if e.Offset >= 0 {
		at = fmt.Sprintf(" at byte %d", e.Offset)
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: malformed response%s: %s: %v", location(e.Remote, e.Node, e.Endpoint), at, e.Reason, e.Err)
	}
	return fmt.Sprintf("%s: malformed response%s: %s", location(e.Remote, e.Node, e.Endpoint), at, e.Reason)
}

// Unwrap returns the decoding error.
func (e *MalformedError) Unwrap() error { return e.Err }

// BodyTooLargeError means the decompressed response body passed the cap. The
// client stops reading at the cap: it never holds more than the cap in memory.
type BodyTooLargeError struct {
	Remote   string
	Node     string
	Endpoint string
	Limit    int64 // Config.MaxBodyBytes
}

// Error describes the failure with remote, node and endpoint.
func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("%s: response body larger than %d bytes", location(e.Remote, e.Node, e.Endpoint), e.Limit)
}

// CertMismatchError means the endpoint's certificate was refused: its
// SHA-256 fingerprint differs from the pinned one, or (without a pin) it
// does not verify against the trusted roots. Seen is the fingerprint of the
// certificate the server presented, so an administrator can compare it
// with the one the node shows.
type CertMismatchError struct {
	Remote   string
	Node     string
	Endpoint string
	Seen     string // fingerprint presented, "AB:CD:..."; "" when there was no certificate
	Expected string // pinned fingerprint; "" when verified against roots
	Err      error  // the verification error when not pinned
}

// Error describes the failure with remote, node and endpoint.
func (e *CertMismatchError) Error() string {
	where := location(e.Remote, e.Node, e.Endpoint)
	seen := e.Seen
	if seen == "" {
		seen = "none"
	}
	if e.Expected != "" {
		return fmt.Sprintf("%s: certificate fingerprint mismatch: seen %s, expected %s", where, seen, e.Expected)
	}
	return fmt.Sprintf("%s: certificate not trusted (fingerprint seen %s): %v", where, seen, e.Err)
}

// Unwrap returns the verification error when not pinned.
func (e *CertMismatchError) Unwrap() error { return e.Err }

// ItemError describes one task-list item that was skipped because it could
// not be turned into a task (bad UPID, missing start time, wrong shape). The
// rest of the page is kept; these errors are returned in ListPage.Skipped.
type ItemError struct {
	Remote   string
	Node     string
	Endpoint string
	Index    int    // position of the item in its page
	UPID     string // the item's upid text, when it had one
	Err      error

	key uint64 // hash of the raw item, to report an item seen on two pages once
}

// Error describes the failure with remote, node and endpoint.
func (e *ItemError) Error() string {
	id := ""
	if e.UPID != "" {
		id = fmt.Sprintf(" (upid %q)", shorten(e.UPID, 160))
	}
	return fmt.Sprintf("%s: skipped task item %d%s: %v", location(e.Remote, e.Node, e.Endpoint), e.Index, id, e.Err)
}

// Unwrap returns the reason.
func (e *ItemError) Unwrap() error { return e.Err }

// PagingError means paging through a task list did not converge: the remote
// returned full pages without new tasks (it ignores start), or the window
// needed more than Config.MaxPages pages.
type PagingError struct {
	Remote   string
	Node     string
	Endpoint string // URL of the last page
	Pages    int    // requests made
	Reason   string
}

// Error describes the failure with remote, node and endpoint.
func (e *PagingError) Error() string {
	return fmt.Sprintf("%s: task paging stopped after %d pages: %s", location(e.Remote, e.Node, e.Endpoint), e.Pages, e.Reason)
}

// ErrorKind classifies err for metric labels and health reports: one of
// "unreachable", "timeout", "auth", "node_offline", "server", "malformed",
// "too_large", "cert_mismatch", "canceled" or "other"; "" for nil.
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	var (
		cert     *CertMismatchError
		tooLarge *BodyTooLargeError
		timeout  *TimeoutError
		unreach  *UnreachableError
		auth     *AuthError
		offline  *NodeOfflineError
		server   *ServerError
		bad      *MalformedError
		paging   *PagingError
		canceled *CanceledError
	)
	switch {
	case errors.As(err, &cert):
		return "cert_mismatch"
	case errors.As(err, &tooLarge):
		return "too_large"
	case errors.As(err, &timeout):
		return "timeout"
	case errors.As(err, &unreach):
		return "unreachable"
	case errors.As(err, &auth):
		return "auth"
	case errors.As(err, &offline):
		return "node_offline"
	case errors.As(err, &server):
		return "server"
	case errors.As(err, &bad), errors.As(err, &paging):
		return "malformed"
	case errors.As(err, &canceled), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}

// shorten cuts s to at most n bytes, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
