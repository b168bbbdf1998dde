package task

import "testing"

// Benchmarks of the UPID functions on the hot paths: every task a poller
// fetches is parsed once, every task line the cache writes or a scan
// reads formats or parses one.

var (
	benchPVE       = "UPID:pve-c001-n1:0001E240:0098A3B1:6553F100:vzdump:101:root@pam:"
	benchPVEToken  = "UPID:pve-c001-n2:002A3C1F:03B2F0A1:6553F1A0:qmigrate:4711:svc-backup@pve!ci:"
	benchPBS       = `UPID:backup1:00000B3A:00019C5E:0000001F:6553F200:backup:store1\x3avm-101:backup@pbs!pve-1:`
	benchRemote    = "pve:pve-c001!" + benchPVE
	benchRemotePBS = "pbs:pbs004!" + benchPBS
)

func BenchmarkParsePVE(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePVE(benchPVE); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePVEToken(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePVE(benchPVEToken); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePBS(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePBS(benchPBS); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseUPID(b *testing.B) {
	b.ReportAllocs()
	in := []string{benchPVE, benchPVEToken, benchPBS}
	i := 0
	for b.Loop() {
		if _, err := ParseUPID(in[i%len(in)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkParseRemoteUPID(b *testing.B) {
	b.ReportAllocs()
	in := []string{benchRemote, benchRemotePBS}
	i := 0
	for b.Loop() {
		if _, err := ParseRemoteUPID(in[i%len(in)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// fieldsOnly parses a UPID and drops its raw text, so that String formats
// it from its fields (the way the cache, which stores only the fields,
// formats every UPID it returns).
func fieldsOnly(b *testing.B, s string) UPID {
	u, err := ParseUPID(s)
	if err != nil {
		b.Fatal(err)
	}
	u.raw = ""
	if u.String() != s {
		b.Fatalf("String() = %q, want %q", u.String(), s)
	}
	return u
}

func BenchmarkUPIDStringPVE(b *testing.B) {
	u := fieldsOnly(b, benchPVE)
	b.ReportAllocs()
	for b.Loop() {
		_ = u.String()
	}
}

func BenchmarkUPIDStringPBS(b *testing.B) {
	u := fieldsOnly(b, benchPBS)
	b.ReportAllocs()
	for b.Loop() {
		_ = u.String()
	}
}

func BenchmarkRemoteUPIDString(b *testing.B) {
	r := RemoteUPID{Remote: "pve-c001", UPID: fieldsOnly(b, benchPVE)}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.String()
	}
}

// BenchmarkCompare orders two tasks with the same start time, the case
// that formats both UPIDs.
func BenchmarkCompare(b *testing.B) {
	x := Task{Remote: "pve-c001", UPID: fieldsOnly(b, benchPVE)}
	y := x
	y.UPID.PID++
	b.ReportAllocs()
	for b.Loop() {
		if Compare(x, y) >= 0 {
			b.Fatal("order")
		}
	}
}

// BenchmarkFilterMatch is the reference filter on one task, with the
// case-insensitive user filter (the slowest condition).
func BenchmarkFilterMatch(b *testing.B) {
	t := Task{Remote: "pve-c001", UPID: fieldsOnly(b, benchPVEToken), EndTime: 1700000100, Status: "WARNINGS: 2"}
	f := Filter{UserFilter: "SVC-backup", TypeFilter: "qm", Since: 1699000000}
	b.ReportAllocs()
	for b.Loop() {
		if !f.Match(&t) {
			b.Fatal("no match")
		}
	}
}

func BenchmarkClassifyStatus(b *testing.B) {
	in := []string{"OK", "WARNINGS: 3", "unable to acquire lock", "", "unknown"}
	i := 0
	for b.Loop() {
		_ = ClassifyStatus(in[i%len(in)])
		i++
	}
}
