package cache

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/taskfleet/taskfleet/task"
)

// Task lines are the one-line JSON form of a task used by archive files, the
// journal and the state file (see doc.go):
//
//	{"upid":"pve:east!UPID:...","starttime":1700000000,"status":"OK","endtime":1700000042}
//
// appendLine writes them with a fixed key order and no spaces; parseLine
// accepts any key order, spaces, unknown keys and nulls, so that files written
// by hand or by Proxmox Datacenter Manager are read too.

// appendLine appends the task line of r and a newline. It copies the
// interned strings' JSON forms, so it scans no string.
func (d *dict) appendLine(b []byte, r *rec, raw *task.UPID) []byte {
	j := &d.json
	pbs := r.flags&flagPBS != 0
	b = append(b, `{"upid":"`...)
	if pbs {
		b = append(b, "pbs:"...)
	} else {
		b = append(b, "pve:"...)
	}
	b = append(b, j.remotes[r.remote]...)
	b = append(b, '!')
	if raw != nil {
		s := appendJSONString(nil, []byte(raw.String()))
		b = append(b, s[1:len(s)-1]...)
	} else {
		b = append(b, "UPID:"...)
		b = append(b, j.nodes[r.node]...)
		b = append(b, ':')
		b = appendHex8(b, uint64(r.pid))
		b = append(b, ':')
		b = appendHex8(b, r.pstart)
		b = append(b, ':')
		if pbs {
			b = appendHex8(b, r.taskID)
			b = append(b, ':')
		}
		b = appendHex8(b, uint64(r.start))
		b = append(b, ':')
		b = append(b, j.types[r.typ]...)
		b = append(b, ':')
		if pbs {
			b = append(b, j.idEscaped[r.id]...)
		} else {
			b = append(b, j.ids[r.id]...)
		}
		b = append(b, ':')
		b = append(b, j.users[r.user]...)
		b = append(b, ':')
	}
	b = append(b, `","starttime":`...)
	b = appendDec(b, r.start)
	if r.end != 0 || d.statuses[r.status] != "" {
		b = append(b, `,"status":"`...)
		b = append(b, j.statuses[r.status]...)
		b = append(b, '"')
	}
	if r.end != 0 {
		b = append(b, `,"endtime":`...)
		b = appendDec(b, r.end)
	}
	return append(b, "}\n"...)
}

// appendTaskLine appends the task line of t (for code paths that have no
// interned form, such as the state file).
func appendTaskLine(b []byte, t *task.Task) []byte {
	b = append(b, `{"upid":`...)
	b = appendJSONString(b, []byte(t.RemoteUPID().String()))
	b = append(b, `,"starttime":`...)
	b = strconv.AppendInt(b, t.UPID.StartTime, 10)
	if t.EndTime != 0 || t.Status != "" {
		b = append(b, `,"status":`...)
		b = appendJSONString(b, []byte(t.Status))
	}
	if t.EndTime != 0 {
		b = append(b, `,"endtime":`...)
		b = strconv.AppendInt(b, t.EndTime, 10)
	}
	return append(b, "}\n"...)
}

// jsonSafe marks the ASCII bytes a JSON string holds as they are.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0 // s[start:i] is safe and not yet appended
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// errLine is wrapped by every task-line parse error.
var errLine = errors.New("bad task line")

// parseLine parses one task line (without its newline).
func parseLine(line []byte) (task.Task, error) {
	var (
		t        task.Task
		upidText string
		haveUPID bool
	)
	p := lineParser{b: line}
	p.space()
	if !p.byte('{') {
		return t, fmt.Errorf("%w: want '{'", errLine)
	}
	p.space()
	if p.byte('}') {
		return t, fmt.Errorf("%w: no upid", errLine)
	}
	for {
		p.space()
		key, err := p.str()
		if err != nil {
			return t, err
		}
		p.space()
		if !p.byte(':') {
			return t, fmt.Errorf("%w: want ':' after %q", errLine, key)
		}
		p.space()
		switch key {
		case "upid":
			if upidText, err = p.str(); err != nil {
				return t, err
			}
			haveUPID = true
		case "status":
			if !p.null() {
				if t.Status, err = p.str(); err != nil {
					return t, err
				}
			}
		case "endtime":
			if !p.null() {
				if t.EndTime, err = p.int(); err != nil {
					return t, err
				}
			}
		case "starttime":
			// Redundant with the UPID, which is authoritative.
			if !p.null() {
				if _, err = p.int(); err != nil {
					return t, err
				}
			}
		default:
			if err := p.skipScalar(); err != nil {
				return t, err
			}
		}
		p.space()
		if p.byte('}') {
			break
		}
		if !p.byte(',') {
			return t, fmt.Errorf("%w: want ',' or '}' at byte %d", errLine, p.i)
		}
	}
	p.space()
	if p.i != len(p.b) {
		return t, fmt.Errorf("%w: trailing data at byte %d", errLine, p.i)
	}
	if !haveUPID {
		return t, fmt.Errorf("%w: no upid", errLine)
	}
	ru, err := task.ParseRemoteUPID(upidText)
	if err != nil {
		return t, fmt.Errorf("%w: %w", errLine, err)
	}
	t.Remote, t.UPID = ru.Remote, ru.UPID
	return t, nil
}

type lineParser struct {
	b []byte
	i int
}

func (p *lineParser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\r' || p.b[p.i] == '\n') {
		p.i++
	}
}

func (p *lineParser) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *lineParser) null() bool {
	if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

func (p *lineParser) int() (int64, error) {
	j := p.i
	if j < len(p.b) && p.b[j] == '-' {
		j++
	}
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	v, err := strconv.ParseInt(string(p.b[p.i:j]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: bad integer at byte %d", errLine, p.i)
	}
	p.i = j
	return v, nil
}

// skipScalar skips a string, number, true, false or null.
func (p *lineParser) skipScalar() error {
	if p.i < len(p.b) && p.b[p.i] == '"' {
		_, err := p.str()
		return err
	}
	j := p.i
	for j < len(p.b) && p.b[j] != ',' && p.b[j] != '}' && p.b[j] != ' ' && p.b[j] != '\t' && p.b[j] != '\r' && p.b[j] != '\n' {
		if c := p.b[j]; c == '{' || c == '[' || c == '"' {
			return fmt.Errorf("%w: nested value at byte %d", errLine, j)
		}
		j++
	}
	if j == p.i {
		return fmt.Errorf("%w: missing value at byte %d", errLine, j)
	}
	p.i = j
	return nil
}

// str parses a JSON string.
func (p *lineParser) str() (string, error) {
	if !p.byte('"') {
		return "", fmt.Errorf("%w: want '\"' at byte %d", errLine, p.i)
	}
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, nil
		case c == '\\':
			return p.strSlow(start)
		case c < 0x20:
			return "", fmt.Errorf("%w: control character in string at byte %d", errLine, p.i)
		}
		p.i++
	}
	return "", fmt.Errorf("%w: unterminated string", errLine)
}

// strSlow parses the rest of a string with escapes, from its first byte.
func (p *lineParser) strSlow(start int) (string, error) {
	out := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), nil
		case c < 0x20:
			return "", fmt.Errorf("%w: control character in string at byte %d", errLine, p.i)
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			break
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", fmt.Errorf("%w: bad \\u escape at byte %d", errLine, p.i)
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					save := p.i
					p.i += 2
					var ok2 bool
					if r2, ok2 = p.hex4(); !ok2 {
						p.i = save
						r2 = -1
					}
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
				} else {
					if r2 >= 0 {
						p.i -= 6 // not a pair: the second escape stands alone
					}
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", fmt.Errorf("%w: bad escape at byte %d", errLine, p.i-1)
		}
	}
	return "", fmt.Errorf("%w: unterminated string", errLine)
}

func (p *lineParser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(v), true
}
