package task

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// UPID is a parsed Proxmox task id ("unique process id").
//
// PVE:  UPID:node:pid:pstart:starttime:type:id:user:
// PBS:  UPID:node:pid:pstart:taskid:starttime:worker_type:worker_id:auth_id:
//
// The numbers are printed as at-least-8-digit upper-case hex. A PBS worker id
// is stored unescaped (as PBS lists it in worker_id) and escaped systemd-style
// when formatted; a PVE id is stored as written (PVE never escapes).
//
// The zero value is not a valid UPID.
type UPID struct {
	Kind      Kind   // PVE or PBS: decided by the number of fields
	Node      string // host name of the node that ran the task
	PID       uint32 // worker process id
	PStart    uint64 // process start in clock ticks since boot (not an epoch)
	TaskID    uint64 // PBS only: per-process task counter
	StartTime int64  // Unix seconds
	Type      string // worker type, e.g. "vzdump", "qmstart", "garbage_collection"
	ID        string // worker id, "" when none; PBS: unescaped
	User      string // user@realm or API token user@realm!name

	// raw is the original text when it differs from the canonical rendering
	// of the fields (lower-case hex, leading zeros, redundant escapes), so
	// String() round-trips exactly. Empty for canonical UPIDs.
	raw string
}

// UPIDError says why a string is not a UPID and which part is wrong.
type UPIDError struct {
	Input  string // the text that was parsed (shortened in Error)
	Part   string // "prefix", "node", "pid", ..., or "fields"
	Reason string
}

func (e *UPIDError) Error() string {
	in := e.Input
	if len(in) > 120 {
		in = in[:120] + "..."
	}
	return fmt.Sprintf("invalid upid %q: %s: %s", in, e.Part, e.Reason)
}

const upidPrefix = "UPID:"

// ParseUPID parses a PVE or PBS UPID; the number of fields decides which
// (8 colons for PVE, 9 for PBS), as Proxmox Datacenter Manager deduces it.
func ParseUPID(s string) (UPID, error) {
	switch strings.Count(s, ":") {
	case 8:
		return ParsePVE(s)
	case 9:
		return ParsePBS(s)
	}
	if !strings.HasPrefix(s, upidPrefix) {
		return UPID{}, &UPIDError{Input: s, Part: "prefix", Reason: `does not start with "UPID:"`}
	}
	return UPID{}, &UPIDError{Input: s, Part: "fields", Reason: fmt.Sprintf("has %d colons, want 8 (PVE) or 9 (PBS) and a final colon", strings.Count(s, ":"))}
}

// ParsePVE parses a Proxmox VE UPID.
func ParsePVE(s string) (UPID, error) { return parse(s, PVE) }

// ParsePBS parses a Proxmox Backup Server UPID.
func ParsePBS(s string) (UPID, error) { return parse(s, PBS) }

// parse parses a UPID of kind k. The two grammars differ only in PBS's
// extra task id, its escaped worker id, and '/' being allowed in its fields.
func parse(s string, k Kind) (UPID, error) {
	pbs := k == PBS
	names := [3]string{"type", "id", "user"}
	n := 7
	if pbs {
		names = [3]string{"worker type", "worker id", "auth id"}
		n = 8
	}
	f, err := splitUPID(s, n)
	if err != nil {
		return UPID{}, err
	}
	u := UPID{Kind: k, Node: f[0]}
	if err := checkNode(s, f[0]); err != nil {
		return UPID{}, err
	}
	pid, err := parseHex(s, "pid", f[1], 8, 8)
	if err != nil {
		return UPID{}, err
	}
	u.PID = uint32(pid)
	if u.PStart, err = parseHex(s, "pstart", f[2], 8, 9); err != nil {
		return UPID{}, err
	}
	rest := f[3:]
	if pbs {
		if u.TaskID, err = parseHex(s, "task id", rest[0], 8, 16); err != nil {
			return UPID{}, err
		}
		rest = rest[1:]
	}
	st, err := parseHex(s, "starttime", rest[0], 8, 8)
	if err != nil {
		return UPID{}, err
	}
	u.StartTime = int64(st)
	for i, v := range rest[1:] {
		if err := checkField(s, names[i], v, i == 1, pbs); err != nil {
			return UPID{}, err
		}
	}
	u.Type, u.ID, u.User = rest[1], rest[2], rest[3]
	if pbs {
		if u.ID, err = UnescapeWorkerID(rest[2]); err != nil {
			return UPID{}, &UPIDError{Input: s, Part: "worker id", Reason: err.Error()}
		}
	}
	var buf [128]byte
	if string(u.appendCanonical(buf[:0])) != s { // compared without allocating
		u.raw = s
	}
	return u, nil
}

// splitUPID checks the prefix and the final colon and returns the n fields.
func splitUPID(s string, n int) ([]string, error) {
	rest, ok := strings.CutPrefix(s, upidPrefix)
	if !ok {
		return nil, &UPIDError{Input: s, Part: "prefix", Reason: `does not start with "UPID:"`}
	}
	if !utf8.ValidString(s) {
		return nil, &UPIDError{Input: s, Part: "fields", Reason: "not valid UTF-8"}
	}
	rest, ok = strings.CutSuffix(rest, ":")
	if !ok {
		return nil, &UPIDError{Input: s, Part: "end", Reason: "does not end with ':'"}
	}
	f := strings.Split(rest, ":")
	if len(f) != n {
		return nil, &UPIDError{Input: s, Part: "fields", Reason: fmt.Sprintf("has %d fields, want %d", len(f), n)}
	}
	return f, nil
}

// checkNode applies the node pattern: alphanumeric, inner dashes allowed.
func checkNode(s, node string) error {
	if node == "" {
		return &UPIDError{Input: s, Part: "node", Reason: "empty"}
	}
	for i := 0; i < len(node); i++ {
		c := node[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum || c == '-' && i > 0 && i < len(node)-1 {
			continue
		}
		return &UPIDError{Input: s, Part: "node", Reason: fmt.Sprintf("%q: want letters, digits and inner '-'", node)}
	}
	return nil
}

func parseHex(s, part, v string, minDigits, maxDigits int) (uint64, error) {
	if len(v) < minDigits || len(v) > maxDigits {
		want := fmt.Sprintf("%d", minDigits)
		if maxDigits != minDigits {
			want = fmt.Sprintf("%d to %d", minDigits, maxDigits)
		}
		return 0, &UPIDError{Input: s, Part: part, Reason: fmt.Sprintf("%q: want %s hex digits", v, want)}
	}
	n, err := strconv.ParseUint(v, 16, 64)
	if err != nil || strings.ContainsAny(v, "+-_xX") {
		return 0, &UPIDError{Input: s, Part: part, Reason: fmt.Sprintf("%q: not hexadecimal", v)}
	}
	return n, nil
}

// checkField rejects whitespace (and '/' on PVE) and, unless empty is
// allowed, an empty value. Colons cannot occur: the string was split at them.
func checkField(s, part, v string, emptyOK, slashOK bool) error {
	if v == "" {
		if emptyOK {
			return nil
		}
		return &UPIDError{Input: s, Part: part, Reason: "empty"}
	}
	for _, r := range v {
		if unicode.IsSpace(r) || r == '/' && !slashOK {
			return &UPIDError{Input: s, Part: part, Reason: fmt.Sprintf("%q contains %q", v, r)}
		}
	}
	return nil
}

// String formats the UPID; it returns the original text for a parsed UPID.
func (u UPID) String() string {
	if u.raw != "" {
		return u.raw
	}
	var buf [128]byte // most UPIDs: the text is then the one allocation
	return string(u.appendCanonical(buf[:0]))
}

// appendCanonical appends the text of u's fields in canonical form
// (upper-case hex, eight digits at least, PBS worker ids escaped): String
// without the kept original.
func (u UPID) appendCanonical(b []byte) []byte {
	b = append(append(b, upidPrefix...), u.Node...)
	b = appendHex(append(b, ':'), uint64(u.PID))
	b = appendHex(append(b, ':'), u.PStart)
	b = append(b, ':')
	if u.Kind == PBS {
		b = append(appendHex(b, u.TaskID), ':')
	}
	b = appendHex(b, uint64(u.StartTime))
	b = append(append(append(b, ':'), u.Type...), ':')
	if u.Kind == PBS {
		b = appendEscapedWorkerID(b, u.ID)
	} else {
		b = append(b, u.ID...)
	}
	return append(append(append(b, ':'), u.User...), ':')
}

// Canonical reports whether String() is derived from the fields alone, so a
// store may keep the fields and drop the text.
func (u UPID) Canonical() bool { return u.raw == "" }

// appendHex appends v in upper-case hex, eight digits at least.
func appendHex(b []byte, v uint64) []byte {
	var buf [16]byte
	h := strconv.AppendUint(buf[:0], v, 16)
	for i := len(h); i < 8; i++ {
		b = append(b, '0')
	}
	for _, c := range h {
		if c >= 'a' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// Owner returns the user without the API token name: "user@realm" for
// "user@realm!token". PVE lists archived token tasks that way.
func (u UPID) Owner() string {
	user, _, _ := strings.Cut(u.User, "!")
	return user
}

// TokenName returns the API token name of the user, or "".
func (u UPID) TokenName() string {
	_, tok, _ := strings.Cut(u.User, "!")
	return tok
}

// IsZero reports whether u is the zero UPID.
func (u UPID) IsZero() bool { return u.Kind == 0 }

// MarshalText implements encoding.TextMarshaler.
func (u UPID) MarshalText() ([]byte, error) {
	if u.IsZero() {
		return nil, fmt.Errorf("marshal upid: zero value")
	}
	return []byte(u.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (u *UPID) UnmarshalText(b []byte) error {
	v, err := ParseUPID(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}
