package task

import (
	"encoding/json"
	"testing"

	"github.com/taskfleet/taskfleet/internal/fixtures"
)

// seedUPIDs adds every UPID string of the fixtures (when present) and a few
// written here to the fuzz corpus.
func seedUPIDs(f *testing.F, rels ...string) {
	for _, s := range []string{
		"UPID:n:00000001:00000002:00000003:t:i:u@pam:",
		`UPID:n:00000001:00000002:00000000:00000003:t:a\x3avm-1:u@pam!tok:`,
		"pve:r!UPID:n:00000001:00000002:00000003:t::u@pam:",
	} {
		f.Add(s)
	}
	for _, rel := range rels {
		var doc struct {
			UPIDs []struct {
				UPID string `json:"upid"`
			} `json:"upids"`
			Examples []struct {
				Input      string `json:"input"`
				RemoteUPID string `json:"remote_upid"`
			} `json:"examples"`
		}
		raw, ok := fixtures.Optional(rel)
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			f.Fatal(err)
		}
		for _, u := range doc.UPIDs {
			f.Add(u.UPID)
		}
		for _, e := range doc.Examples {
			f.Add(e.Input + e.RemoteUPID)
		}
	}
}

func FuzzParseUPID(f *testing.F) {
	seedUPIDs(f, "upid/pve-upids.json", "upid/pbs-upids.json", "upid/invalid-upids.json")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUPID(s)
		if err != nil {
			return
		}
		if got := u.String(); got != s {
			t.Fatalf("String(ParseUPID(%q)) = %q", s, got)
		}
		// The canonical rendering of the fields parses to the same fields.
		c := u
		c.raw = ""
		back, err := ParseUPID(c.String())
		if err != nil {
			t.Fatalf("canonical form %q does not parse: %v", c.String(), err)
		}
		back.raw = ""
		if back != c {
			t.Fatalf("canonical round trip: %+v != %+v", back, c)
		}
	})
}

func FuzzParseRemoteUPID(f *testing.F) {
	seedUPIDs(f, "upid/remote-upids.json", "upid/pve-upids.json")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRemoteUPID(s)
		if err != nil {
			return
		}
		if got := r.String(); got != s {
			t.Fatalf("String(ParseRemoteUPID(%q)) = %q", s, got)
		}
	})
}

func FuzzUnescapeWorkerID(f *testing.F) {
	f.Add(`store\x3avm-100`)
	f.Add(`daily\x3av\x2dd0cc18c5\x2d8707`)
	f.Fuzz(func(t *testing.T, s string) {
		id, err := UnescapeWorkerID(s)
		if err != nil {
			return
		}
		back, err := UnescapeWorkerID(EscapeWorkerID(id))
		if err != nil || back != id {
			t.Fatalf("unescape(escape(%q)) = %q, %v", id, back, err)
		}
	})
}
