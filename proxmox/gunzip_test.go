package proxmox

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// TestGzipBodies: a compressed answer is read (error answers included); a
// body announced as gzip that is not gzip, or is cut short, fails as
// malformed.
func TestGzipBodies(t *testing.T) {
	compress := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.Bytes()
	}
	nodes := `{"data":[{"node":"pve1","status":"online"}]}`
	good := compress(nodes)
	for _, tc := range []struct {
		name   string
		status int
		body   []byte
		reason string // "" means no error
	}{
		{"compressed", 200, good, ""},
		{"not gzip", 200, []byte(nodes), "invalid gzip stream"},
		{"bad checksum", 200, append(bytes.Clone(good[:len(good)-8]), 0, 0, 0, 0, 0, 0, 0, 0), "invalid gzip stream"},
		{"cut short", 200, good[:len(good)/2], "truncated body"},
		{"empty", 200, nil, "truncated body"},
		{"compressed error answer", 500, compress(`{"data":null,"message":"no such thing"}`), "no such thing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sawAccept string
			ts := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sawAccept = r.Header.Get("Accept-Encoding")
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Encoding", "gzip")
				w.WriteHeader(tc.status)
				w.Write(tc.body)
			}))
			c := newTestClient(t, testConfig(task.PVE, ts.endpoint()))
			got, err := c.Nodes(context.Background())
			if sawAccept != "gzip" {
				t.Errorf("Accept-Encoding %q, want gzip", sawAccept)
			}
			switch {
			case tc.reason == "":
				if err != nil || len(got) != 1 || got[0].Name != "pve1" {
					t.Fatalf("nodes %+v, %v", got, err)
				}
			case tc.status != 200:
				var se *ServerError
				if !errors.As(err, &se) || !strings.Contains(se.Message, tc.reason) {
					t.Fatalf("err = %v, want a ServerError saying %q", err, tc.reason)
				}
			default:
				var me *MalformedError
				if !errors.As(err, &me) || me.Reason != tc.reason {
					t.Fatalf("err = %v, want a MalformedError saying %q", err, tc.reason)
				}
			}
		})
	}
}
