// Package memnet is an in-memory network: listeners that accept and dialers
// that connect without opening operating-system sockets, so that a real
// net/http server and client (TLS included) can talk inside a
// testing/synctest bubble, where time is virtual and real sockets would
// stall the fake clock. It follows the pipeListener of Prometheus' scrape
// tests; drop it once Go's httptest offers an in-memory server (Go 1.27).
//
// A [Network] is a set of addresses ("127.0.3.7:8006"). [Network.Listen]
// registers one, [Network.DialContext] connects to it and fails like a
// refused TCP connection when nobody listens there. Connections are
// buffered in both directions (like socket buffers), support deadlines and
// report errors the way TCP connections do: reading from a connection the
// peer closed gives io.EOF, writing to it a broken pipe, and any use of a
// connection after its own Close net.ErrClosed.
//
// Inside a synctest bubble, create the Network, its listeners and its
// connections inside that bubble: every blocking operation waits on
// channels, which the bubble sees as durably blocked only when they
// belong to it.
package memnet
