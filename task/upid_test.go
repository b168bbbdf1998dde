package task

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/taskfleet/taskfleet/internal/fixtures"
)

type pveFixture struct {
	UPID    string `json:"upid"`
	Decoded struct {
		Node      string `json:"node"`
		PID       uint32 `json:"pid"`
		PStart    uint64 `json:"pstart"`
		StartTime int64  `json:"starttime"`
		Type      string `json:"type"`
		ID        string `json:"id"`
		User      string `json:"user"`
	} `json:"decoded"`
	ValidPVE bool `json:"valid_pve"`
	ValidPBS bool `json:"valid_pbs"`
}

type pbsFixture struct {
	UPID    string `json:"upid"`
	Decoded struct {
		Node       string  `json:"node"`
		PID        uint32  `json:"pid"`
		PStart     uint64  `json:"pstart"`
		TaskID     uint64  `json:"task_id"`
		StartTime  int64   `json:"starttime"`
		WorkerType string  `json:"worker_type"`
		WorkerID   *string `json:"worker_id"`
		AuthID     string  `json:"auth_id"`
	} `json:"decoded"`
	ValidPVE bool `json:"valid_pve"`
	ValidPBS bool `json:"valid_pbs"`
}

func loadFixture[T any](t testing.TB, rel string) []T {
	t.Helper()
	var f struct {
		UPIDs    []T `json:"upids"`
		Examples []T `json:"examples"`
	}
	if err := json.Unmarshal(fixtures.Read(t, rel), &f); err != nil {
		t.Fatalf("decode %s: %v", rel, err)
	}
	return append(f.UPIDs, f.Examples...)
}

func TestPVEFixtures(t *testing.T) {
	cases := loadFixture[pveFixture](t, "upid/pve-upids.json")
	if len(cases) == 0 {
		t.Fatal("no PVE fixtures")
	}
	for _, c := range cases {
		t.Run(c.UPID, func(t *testing.T) {
			u, err := ParseUPID(c.UPID)
			if err != nil {
				t.Fatalf("ParseUPID: %v", err)
			}
			d := c.Decoded
			want := UPID{Kind: PVE, Node: d.Node, PID: d.PID, PStart: d.PStart, StartTime: d.StartTime, Type: d.Type, ID: d.ID, User: d.User}
			u.raw = ""
			if u != want {
				t.Errorf("ParseUPID = %+v, want %+v", u, want)
			}
			if got := mustParse(t, c.UPID).String(); got != c.UPID {
				t.Errorf("String() = %q, want %q", got, c.UPID)
			}
			if _, err := ParsePBS(c.UPID); err == nil && !c.ValidPBS {
				t.Errorf("ParsePBS accepted a PVE-only UPID")
			}
		})
	}
}

func TestPBSFixtures(t *testing.T) {
	cases := loadFixture[pbsFixture](t, "upid/pbs-upids.json")
	if len(cases) == 0 {
		t.Fatal("no PBS fixtures")
	}
	for _, c := range cases {
		t.Run(c.UPID, func(t *testing.T) {
			u, err := ParseUPID(c.UPID)
			if err != nil {
				t.Fatalf("ParseUPID: %v", err)
			}
			d := c.Decoded
			id := ""
			if d.WorkerID != nil {
				id = *d.WorkerID
			}
			want := UPID{Kind: PBS, Node: d.Node, PID: d.PID, PStart: d.PStart, TaskID: d.TaskID, StartTime: d.StartTime, Type: d.WorkerType, ID: id, User: d.AuthID}
			u.raw = ""
			if u != want {
				t.Errorf("ParseUPID = %+v, want %+v", u, want)
			}
			if got := mustParse(t, c.UPID).String(); got != c.UPID {
				t.Errorf("String() = %q, want %q", got, c.UPID)
			}
			if _, err := ParsePVE(c.UPID); err == nil && !c.ValidPVE {
				t.Errorf("ParsePVE accepted a PBS-only UPID")
			}
		})
	}
}

func TestRemoteFixtures(t *testing.T) {
	type remoteFixture struct {
		RemoteUPID string `json:"remote_upid"`
		Expected   struct {
			Remote     string `json:"remote"`
			RemoteType string `json:"remote_type"`
			UPID       string `json:"upid"`
			Display    string `json:"display"`
		} `json:"expected"`
	}
	cases := loadFixture[remoteFixture](t, "upid/remote-upids.json")
	if len(cases) == 0 {
		t.Fatal("no remote UPID fixtures")
	}
	for _, c := range cases {
		t.Run(c.RemoteUPID, func(t *testing.T) {
			r, err := ParseRemoteUPID(c.RemoteUPID)
			if err != nil {
				t.Fatalf("ParseRemoteUPID: %v", err)
			}
			if r.Remote != c.Expected.Remote || r.UPID.Kind.String() != c.Expected.RemoteType || r.UPID.String() != c.Expected.UPID {
				t.Errorf("ParseRemoteUPID = %s %s %s, want %s %s %s", r.Remote, r.UPID.Kind, r.UPID, c.Expected.Remote, c.Expected.RemoteType, c.Expected.UPID)
			}
			if got := r.String(); got != c.RemoteUPID {
				t.Errorf("String() = %q, want the input %q", got, c.RemoteUPID)
			}
			if got := (RemoteUPID{Remote: r.Remote, UPID: r.UPID}).String(); got != c.Expected.Display {
				t.Errorf("typed form = %q, want %q", got, c.Expected.Display)
			}
		})
	}
}

func TestInvalidFixtures(t *testing.T) {
	type invalid struct {
		Input  string `json:"input"`
		Reason string `json:"reason"`
	}
	cases := loadFixture[invalid](t, "upid/invalid-upids.json")
	if len(cases) == 0 {
		t.Fatal("no invalid fixtures")
	}
	for _, c := range cases {
		t.Run(c.Input, func(t *testing.T) {
			_, err := ParseUPID(c.Input)
			var ue *UPIDError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseUPID(%q) error = %v, want *UPIDError (%s)", c.Input, err, c.Reason)
			}
			if ue.Part == "" || ue.Reason == "" {
				t.Errorf("error %v does not name the wrong part", err)
			}
		})
	}
}

func mustParse(t testing.TB, s string) UPID {
	t.Helper()
	u, err := ParseUPID(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestErrorsNamePart checks that a bad field is reported by name.
func TestErrorsNamePart(t *testing.T) {
	cases := []struct {
		name, in, part string
	}{
		{name: "no prefix", in: "XPID:n:00000001:00000002:00000003:t:i:u@pam:", part: "prefix"},
		{name: "empty node", in: "UPID::00000001:00000002:00000003:t:i:u@pam:", part: "node"},
		{name: "node underscore", in: "UPID:a_b:00000001:00000002:00000003:t:i:u@pam:", part: "node"},
		{name: "short pid", in: "UPID:n:0001:00000002:00000003:t:i:u@pam:", part: "pid"},
		{name: "non-hex pstart", in: "UPID:n:00000001:0000000G:00000003:t:i:u@pam:", part: "pstart"},
		{name: "long starttime", in: "UPID:n:00000001:00000002:000000003:t:i:u@pam:", part: "starttime"},
		{name: "empty type", in: "UPID:n:00000001:00000002:00000003::i:u@pam:", part: "type"},
		{name: "slash in pve id", in: "UPID:n:00000001:00000002:00000003:t:a/b:u@pam:", part: "id"},
		{name: "empty user", in: "UPID:n:00000001:00000002:00000003:t:i::", part: "user"},
		{name: "no final colon", in: "UPID:n:00000001:00000002:00000003:t:i:u@pam:x", part: "end"},
		{name: "pbs bad escape", in: `UPID:n:00000001:00000002:00000000:00000003:t:a\x4:u@pam:`, part: "worker id"},
		{name: "pbs short task id", in: "UPID:n:00000001:00000002:0000:00000003:t::u@pam:", part: "task id"},
		{name: "sign in hex", in: "UPID:n:+0000001:00000002:00000003:t:i:u@pam:", part: "pid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseUPID(c.in)
			var ue *UPIDError
			if !errors.As(err, &ue) || ue.Part != c.part {
				t.Errorf("ParseUPID(%q) = %v, want error in part %q", c.in, err, c.part)
			}
		})
	}
}

func TestRoundTripNonCanonical(t *testing.T) {
	for _, s := range []string{
		"UPID:n:0000abcd:00000002:00000003:t:i:u@pam:",
		"UPID:n:00000001:000000002:00000003:t:i:u@pam:",
		`UPID:n:00000001:00000002:00000000:00000003:t:a\x41b:u@pam:`,
		`UPID:n:00000001:00000002:00000000:00000003:t:a\x3A:u@pam:`,
	} {
		u := mustParse(t, s)
		if u.Canonical() {
			t.Errorf("%q: Canonical() = true", s)
		}
		if u.String() != s {
			t.Errorf("String() = %q, want %q", u.String(), s)
		}
	}
	u := UPID{Kind: PBS, Node: "pbs1", PID: 1, PStart: 2, TaskID: 3, StartTime: 4, Type: "backup", ID: "store:vm/100", User: "root@pam"}
	want := `UPID:pbs1:00000001:00000002:00000003:00000004:backup:store\x3avm-100:root@pam:`
	if u.String() != want {
		t.Errorf("String() = %q, want %q", u.String(), want)
	}
	if back := mustParse(t, want); back != u {
		t.Errorf("parse back = %+v, want %+v", back, u)
	}
}

func TestValidateRemoteID(t *testing.T) {
	for _, ok := range []string{"a", "pve-east", "pbs_1.lab", "_x", "9"} {
		if err := ValidateRemoteID(ok); err != nil {
			t.Errorf("ValidateRemoteID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", ".a", "a/b", "../x", "a b", "a:b", "a!b", "ä"} {
		if err := ValidateRemoteID(bad); err == nil {
			t.Errorf("ValidateRemoteID(%q) = nil, want error", bad)
		}
	}
}

func TestClassifyStatusFixtures(t *testing.T) {
	var f struct {
		Statuses []struct {
			Status         string `json:"status"`
			Classification struct {
				PDM string `json:"pdm_TaskStateType_new_from_str"`
			} `json:"classification"`
		} `json:"statuses"`
	}
	raw := fixtures.Read(t, "task-status/status-strings.json")
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Statuses) == 0 {
		t.Fatal("status-strings.json has no statuses")
	}
	for _, s := range f.Statuses {
		want := s.Classification.PDM
		if want == "" {
			continue
		}
		if got := ClassifyStatus(s.Status).String(); got != want {
			t.Errorf("ClassifyStatus(%q) = %s, want %s (PDM)", s.Status, got, want)
		}
	}
}

// TestValidateAgreesWithParse checks that Validate accepts a UPID built
// from fields exactly when its text parses back to the same fields (what
// the cache's journal replay needs), and that ValidNumbers and ValidField
// together say the same.
func TestValidateAgreesWithParse(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	parts := []string{"", "a", ":", " ", "/", "-", "é", "\xff", "\t", "x-y", "Z9", "\u00a0"}
	pick := func() string { return parts[rng.IntN(len(parts))] + parts[rng.IntN(len(parts))] }
	valid := 0
	for range 20000 {
		u := UPID{Kind: Kind(rng.IntN(3)), Node: pick(), Type: pick(), ID: pick(), User: pick(),
			PID: rng.Uint32(), PStart: uint64(rng.Int64N(1 << 37)), StartTime: rng.Int64N(1<<33) - 1<<31}
		if u.Kind == PBS || rng.IntN(10) == 0 {
			u.TaskID = uint64(rng.IntN(3))
		}
		err := u.Validate()
		p, perr := ParseUPID(u.String())
		if ok := u.Kind != 0 && perr == nil && p == u; (err == nil) != ok {
			t.Fatalf("Validate(%+v) = %v, but parsing %q gives %+v, %v", u, err, u.String(), p, perr)
		}
		byParts := u.ValidNumbers() && ValidField(u.Kind, FieldNode, u.Node) && ValidField(u.Kind, FieldType, u.Type) &&
			ValidField(u.Kind, FieldID, u.ID) && ValidField(u.Kind, FieldUser, u.User)
		if byParts != (err == nil) {
			t.Fatalf("Validate(%+v) = %v, but ValidNumbers and ValidField say %v", u, err, byParts)
		}
		if err == nil {
			valid++
		} else if ue, ok := err.(*UPIDError); !ok || ue.Part == "" || ue.Input != u.String() {
			t.Fatalf("Validate(%+v) = %#v, want a *UPIDError with its part and input", u, err)
		}
	}
	if valid < 10 {
		t.Fatalf("only %d of 20000 generated UPIDs valid: the test does not test", valid)
	}
	for _, s := range []string{"UPID:pve1:00000001:00000002:65000000:vzdump:100:root@pam:", "UPID:pbs:000003E8:0000F0A1:00000000:65000000:backup:store\\x3avm-100:root@pam:"} {
		u, err := ParseUPID(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Validate(); err != nil {
			t.Errorf("Validate(ParseUPID(%q)) = %v", s, err)
		}
	}
}
