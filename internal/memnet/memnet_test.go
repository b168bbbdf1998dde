package memnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns a dialed and an accepted connection of a fresh network.
func pair(t *testing.T, n *Network) (client, server net.Conn) {
	t.Helper()
	l, err := n.Listen("127.0.3.7:8006")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	client, err = n.Dial("tcp", "127.0.3.7:8006")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestDialUnknownAddressIsRefused(t *testing.T) {
	var n Network
	defer n.Close()
	_, err := n.DialContext(context.Background(), "tcp", "127.0.9.9:8006")
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("DialContext error = %#v, want a *net.OpError from dial", err)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("DialContext error = %v, want ECONNREFUSED", err)
	}
	if op.Addr == nil || op.Addr.String() != "127.0.9.9:8006" {
		t.Fatalf("error address = %v, want 127.0.9.9:8006", op.Addr)
	}
	if _, err := n.Dial("udp", "127.0.9.9:8006"); err == nil {
		t.Fatal("Dial udp succeeded, want an unknown-network error")
	}
}

func TestDialHonoursCanceledContext(t *testing.T) {
	var n Network
	defer n.Close()
	l, err := n.Listen("127.0.0.2:1")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.DialContext(ctx, "tcp", "127.0.0.2:1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("DialContext with canceled context = %v, want context.Canceled", err)
	}
}

func TestListenAddressInUseAndPortZero(t *testing.T) {
	var n Network
	defer n.Close()
	l, err := n.Listen("127.0.3.7:8006")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Listen("127.0.3.7:8006"); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second Listen = %v, want EADDRINUSE", err)
	}
	l.Close()
	l2, err := n.Listen("127.0.3.7:8006")
	if err != nil {
		t.Fatalf("Listen after Close = %v, want the address free again", err)
	}
	l2.Close()

	a, err := n.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := n.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pa, pb := a.Addr().(*net.TCPAddr).Port, b.Addr().(*net.TCPAddr).Port
	if pa == 0 || pb == 0 || pa == pb {
		t.Fatalf("ports for :0 = %d and %d, want two distinct non-zero ports", pa, pb)
	}
	c, err := n.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatalf("Dial %s: %v", a.Addr(), err)
	}
	c.Close()
	if _, err := n.Listen("no-port"); err == nil {
		t.Fatal("Listen without port succeeded")
	}
}

func TestRoundTripLargeTransfersBothWays(t *testing.T) {
	n := Network{BufferSize: 1000} // small buffer: writes must block and resume
	defer n.Close()
	client, server := pair(t, &n)
	up := make([]byte, 1<<20)
	down := make([]byte, 1<<20)
	rand.Read(up)
	rand.Read(down)

	var wg sync.WaitGroup
	var gotUp, gotDown []byte
	var errUp, errDown error
	wg.Add(4)
	go func() { defer wg.Done(); _, errUp = client.Write(up) }()
	go func() { defer wg.Done(); _, errDown = server.Write(down) }()
	go func() { defer wg.Done(); gotUp, _ = io.ReadAll(io.LimitReader(server, int64(len(up)))) }()
	go func() { defer wg.Done(); gotDown, _ = io.ReadAll(io.LimitReader(client, int64(len(down)))) }()
	wg.Wait()
	if errUp != nil || errDown != nil {
		t.Fatalf("Write errors: %v, %v", errUp, errDown)
	}
	if !bytes.Equal(gotUp, up) || !bytes.Equal(gotDown, down) {
		t.Fatalf("transferred bytes differ: up %d/%d, down %d/%d", len(gotUp), len(up), len(gotDown), len(down))
	}
	if got, want := client.RemoteAddr().String(), "127.0.3.7:8006"; got != want {
		t.Errorf("client RemoteAddr = %s, want %s", got, want)
	}
	if client.LocalAddr().String() != server.RemoteAddr().String() {
		t.Errorf("client LocalAddr %s != server RemoteAddr %s", client.LocalAddr(), server.RemoteAddr())
	}
}

func TestCloseSemantics(t *testing.T) {
	var n Network
	defer n.Close()
	client, server := pair(t, &n)
	if _, err := client.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	client.Close()
	// The peer reads what was written, then io.EOF.
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "last words" {
		t.Fatalf("ReadAll after peer close = %q, %v; want %q, nil", got, err, "last words")
	}
	// Writing to a peer that closed is a broken pipe.
	if _, err := server.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write to closed peer = %v, want EPIPE", err)
	}
	// Using a closed connection is net.ErrClosed.
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read on closed conn = %v, want net.ErrClosed", err)
	}
	if _, err := client.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write on closed conn = %v, want net.ErrClosed", err)
	}
	if err := client.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close = %v, want net.ErrClosed", err)
	}
}

func TestCloseUnblocksBlockedReadAndWrite(t *testing.T) {
	n := Network{BufferSize: 4}
	defer n.Close()
	client, server := pair(t, &n)
	readErr := make(chan error)
	go func() { _, err := server.Read(make([]byte, 1)); readErr <- err }()
	writeErr := make(chan error)
	go func() { _, err := client.Write(make([]byte, 100)); writeErr <- err }()
	// The write fills the buffer and blocks; the read gets 1 byte or blocks.
	<-readErr
	server.Close()
	if err := <-writeErr; !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("blocked Write after peer Close = %v, want EPIPE", err)
	}
	go func() { _, err := client.Read(make([]byte, 1)); readErr <- err }()
	if err := <-readErr; err != io.EOF {
		t.Fatalf("Read after peer Close = %v, want io.EOF", err)
	}
}

func TestDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := Network{BufferSize: 2}
		defer n.Close()
		client, server := pair(t, &n)

		start := time.Now()
		client.SetReadDeadline(start.Add(5 * time.Second))
		_, err := client.Read(make([]byte, 1))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read past deadline = %v, want os.ErrDeadlineExceeded", err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Read past deadline = %v, want a net.Error with Timeout()", err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Fatalf("Read timed out after %v, want 5s", d)
		}

		// A past deadline wakes a blocked Read (net/http's abortPendingRead).
		client.SetReadDeadline(time.Time{})
		done := make(chan error)
		go func() { _, err := client.Read(make([]byte, 1)); done <- err }()
		synctest.Wait()
		client.SetReadDeadline(time.Unix(1, 0))
		if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read after past deadline = %v, want os.ErrDeadlineExceeded", err)
		}
		// Clearing the deadline makes the connection usable again.
		client.SetReadDeadline(time.Time{})
		server.Write([]byte("y"))
		if _, err := client.Read(make([]byte, 1)); err != nil {
			t.Fatalf("Read after clearing deadline = %v", err)
		}

		// A write that cannot finish times out with the bytes written so far.
		server.SetWriteDeadline(time.Now().Add(time.Second))
		nw, err := server.Write([]byte("abcdef"))
		if !errors.Is(err, os.ErrDeadlineExceeded) || nw != 2 {
			t.Fatalf("Write into a full buffer = %d, %v; want 2, os.ErrDeadlineExceeded", nw, err)
		}
	})
}

func TestAcceptUnblocksOnListenerClose(t *testing.T) {
	var n Network
	defer n.Close()
	l, err := n.Listen("127.0.0.5:443")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error)
	go func() { _, err := l.Accept(); errc <- err }()
	l.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
	}
	if _, err := n.Dial("tcp", "127.0.0.5:443"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial after listener Close = %v, want ECONNREFUSED", err)
	}
}

func TestListenerCloseClosesUnacceptedConnections(t *testing.T) {
	var n Network
	defer n.Close()
	l, err := n.Listen("127.0.0.5:443")
	if err != nil {
		t.Fatal(err)
	}
	c, err := n.Dial("tcp", "127.0.0.5:443")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l.Close()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("Read on a connection never accepted = %v, want io.EOF", err)
	}
}

func TestNetworkCloseClosesEverything(t *testing.T) {
	var n Network
	client, server := pair(t, &n)
	l, err := n.Listen("127.0.0.6:80")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error)
	go func() { _, err := l.Accept(); errc <- err }()
	n.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after network Close = %v, want net.ErrClosed", err)
	}
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("client Read after network Close = %v, want net.ErrClosed", err)
	}
	if _, err := server.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("server Write after network Close = %v, want net.ErrClosed", err)
	}
	if _, err := n.Listen("127.0.0.7:80"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Listen after network Close = %v, want net.ErrClosed", err)
	}
	if _, err := n.Dial("tcp", "127.0.0.6:80"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Dial after network Close = %v, want net.ErrClosed", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second network Close = %v", err)
	}
}

// TestHTTPInsideSynctest runs a net/http server and client over the
// network inside a bubble: an hour of server latency costs no real time,
// and keep-alive reuses the one connection.
func TestHTTPInsideSynctest(t *testing.T) {
	realStart := time.Now()
	synctest.Test(t, func(t *testing.T) {
		var n Network
		l, err := n.Listen("127.0.1.1:8006")
		if err != nil {
			t.Fatal(err)
		}
		accepted := 0
		var mu sync.Mutex
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(time.Hour)
				io.WriteString(w, "hello "+r.URL.Path)
			}),
			ConnState: func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			},
		}
		served := make(chan error)
		go func() { served <- srv.Serve(l) }()

		tr := &http.Transport{DialContext: n.DialContext}
		client := &http.Client{Transport: tr}
		start := time.Now()
		for i := range 3 {
			resp, err := client.Get("http://127.0.1.1:8006/x")
			if err != nil {
				t.Fatalf("GET %d: %v", i, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "hello /x" {
				t.Fatalf("body = %q", body)
			}
		}
		if d := time.Since(start); d != 3*time.Hour {
			t.Fatalf("three requests took %v of fake time, want 3h", d)
		}
		if _, err := client.Get("http://127.0.1.2:8006/"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("GET of an unknown address = %v, want ECONNREFUSED", err)
		}
		tr.CloseIdleConnections()
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve = %v, want http.ErrServerClosed", err)
		}
		n.Close()
		mu.Lock()
		defer mu.Unlock()
		if accepted != 1 {
			t.Fatalf("server accepted %d connections, want 1 (keep-alive)", accepted)
		}
	})
	if d := time.Since(realStart); d > 10*time.Second {
		t.Fatalf("3 hours of fake latency took %v of real time", d)
	}
}
