package sim

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestIdleTimeoutFreshConnection: a PVE node also closes a connection
// that completed its TLS handshake but never sent a request, after 5 s
// (pveproxy's inactivity timeout runs from the connection's start; an
// HTTP client's spare dial is such a connection).
func TestIdleTimeoutFreshConnection(t *testing.T) {
	runInBubble(t, Config{Seed: 39, PVEClusters: 1, History: time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		ep := f.Remotes()[0].Endpoints[0]
		raw, err := f.DialContext(context.Background(), "tcp", strings.TrimPrefix(ep.URL, "https://"))
		if err != nil {
			t.Fatal(err)
		}
		conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
		defer conn.Close()
		if err := conn.Handshake(); err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		go func() {
			_, err := conn.Read(make([]byte, 1))
			closed <- err
		}()
		time.Sleep(4900 * time.Millisecond)
		synctest.Wait()
		select {
		case err := <-closed:
			t.Fatalf("closed after 4.9 s: %v", err)
		default:
		}
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		select {
		case err := <-closed:
			if err == nil {
				t.Fatal("read a byte from a connection that sent no request")
			}
		default:
			t.Fatal("a connection without a request is still open after 5.1 s")
		}
	})
}
