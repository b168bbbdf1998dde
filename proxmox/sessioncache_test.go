package proxmox

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
)

// TestSessionCacheKeepsPeerCertificates: a session resumed from the
// serialized cache still shows the server's certificate to
// VerifyConnection (the pin check runs on resumed sessions too).
func TestSessionCacheKeepsPeerCertificates(t *testing.T) {
	srv := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	cache := newSessionCache()
	var seen []string
	cfg := &tls.Config{
		InsecureSkipVerify: true,
		ClientSessionCache: cache,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				seen = append(seen, "")
				return nil
			}
			seen = append(seen, Fingerprint(cs.PeerCertificates[0]))
			return nil
		},
	}
	addr := strings.TrimPrefix(srv.URL, "https://")
	for i := range 3 {
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Read the session ticket the server sends after the handshake.
		_, _ = conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				break
			}
		}
		if got := conn.ConnectionState().DidResume; got != (i > 0) {
			t.Errorf("connection %d: resumed %v", i, got)
		}
		conn.Close()
	}
	for i, fp := range seen {
		if fp != srv.FP {
			t.Errorf("handshake %d: VerifyConnection saw certificate %q, want %s", i, fp, srv.FP)
		}
	}
	if len(seen) != 3 {
		t.Errorf("VerifyConnection ran %d times, want 3", len(seen))
	}
}

// TestSessionCacheBounded: Put(nil) removes a session, and the cache
// holds at most sessionCacheSize of them.
func TestSessionCacheBounded(t *testing.T) {
	srv := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	cache := newSessionCache()
	cfg := &tls.Config{InsecureSkipVerify: true, ClientSessionCache: cache}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(srv.URL, "https://"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
	buf := make([]byte, 512)
	for {
		if _, err := conn.Read(buf); err != nil {
			break
		}
	}
	conn.Close()
	var key string
	for _, s := range cache.sessions {
		key = s.key
	}
	cs, ok := cache.Get(key)
	if !ok {
		t.Fatalf("no session cached (keys %d)", len(cache.sessions))
	}
	for i := range 2 * sessionCacheSize {
		cache.Put(string(rune('a'+i%26))+strings.Repeat("x", i), cs)
	}
	if n := len(cache.sessions); n != sessionCacheSize {
		t.Errorf("%d sessions cached, want the bound %d", n, sessionCacheSize)
	}
	cache.Put(key, nil)
	if _, ok := cache.Get(key); ok {
		t.Error("Put(nil) left the session")
	}
}
