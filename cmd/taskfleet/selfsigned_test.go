package main

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestSelfSignedRemovesCrashLeftovers: the temporary files a crash left
// while the self-signed pair was written (.api-key.pem.tmp-*) are removed
// at the next start, whether the pair is then generated or reused.
func TestSelfSignedRemovesCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8087}
	leftovers := func() []string {
		var out []string
		for _, n := range []string{".api-key.pem.tmp-1234", ".api-cert.pem.tmp-5678"} {
			p := filepath.Join(dir, n)
			if err := os.WriteFile(p, []byte("torn"), 0o600); err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	for _, round := range []string{"generated", "reused"} {
		files := leftovers()
		at, err := selfSigned(dir, addr)
		if err != nil {
			t.Fatalf("%s: %v", round, err)
		}
		if got := at.created; got != (round == "generated") {
			t.Errorf("%s: created = %v", round, got)
		}
		for _, f := range files {
			if _, err := os.Stat(f); !os.IsNotExist(err) {
				t.Errorf("%s: %s left behind (%v)", round, filepath.Base(f), err)
			}
		}
	}
}
