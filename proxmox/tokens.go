package proxmox

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// The long answers (task lists, /cluster/tasks, guest lists) are read with
// a token decoder, in one pass and without reflection: encoding/json's
// Decoder scans each value twice (to find its end, then to decode it), and
// a 10,000-remote sweep spent a quarter of its CPU there.

// decodeList decodes a list answer, {"data":[item, ...], "total": n}, one
// item at a time: each gets the item's raw JSON, valid until it returns,
// so memory stays at what the caller keeps of each item. It returns the
// total attribute, -1 when absent.
func decodeList(dec *jsontext.Decoder, each func(raw []byte)) (total int, err error) {
	total = -1
	seenData := false
	err = readObject(dec, "top level", func(name []byte) error {
		switch string(name) {
		case "data":
			seenData = true
			return readArray(dec, "data", func(i int) error {
				raw, err := dec.ReadValue()
				if err != nil {
					return inItem(err, fmt.Sprintf(" in task item %d", i))
				}
				each(raw)
				return nil
			})
		case "total":
			raw, err := dec.ReadValue()
			if err != nil {
				return inItem(err, " in total")
			}
			var f flexInt
			if err := f.UnmarshalJSON(raw); err != nil {
				return &shapeError{reason: "invalid value in total", offset: dec.InputOffset() - int64(len(raw)), err: err}
			}
			if f.ok {
				total = int(f.v)
			}
			return nil
		}
		return dec.SkipValue()
	})
	if err != nil {
		return 0, err
	}
	if !seenData {
		return 0, &shapeError{reason: `no "data" in the answer`, offset: -1}
	}
	return total, nil
}

// inItem names where invalid JSON was found; truncation and read errors
// pass unchanged.
func inItem(err error, where string) error {
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return &shapeError{reason: "invalid JSON" + where, offset: syn.ByteOffset, err: err}
	}
	return err
}

// readObject reads a JSON object, calling member for each name with the
// decoder before the value, which member must read. The name is valid
// until the next read.
func readObject(dec *jsontext.Decoder, what string, member func(name []byte) error) error {
	if k := dec.PeekKind(); k != '{' {
		return kindError(dec, what, k, "object")
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != '}' {
		raw, err := dec.ReadValue() // the quoted name: no allocation
		if err != nil {
			return err
		}
		name := raw[1 : len(raw)-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			if name, err = jsontext.AppendUnquote(nil, raw); err != nil {
				return err
			}
		}
		if err := member(name); err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// readArray reads a JSON array, calling item for each element with the
// decoder before it, which item must read.
func readArray(dec *jsontext.Decoder, what string, item func(i int) error) error {
	if k := dec.PeekKind(); k != '[' {
		return kindError(dec, what, k, "array")
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for i := 0; dec.PeekKind() != ']'; i++ {
		if err := item(i); err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// kindError reports a value of the wrong kind where want was expected, or
// the decoder's error when there is no value at all (PeekKind returned 0).
func kindError(dec *jsontext.Decoder, what string, k jsontext.Kind, want string) error {
	if k == 0 {
		_, err := dec.ReadToken()
		return err
	}
	got := kindNames[k]
	// The value starts after the separators the decoder has not consumed.
	at := dec.InputOffset() + int64(len(dec.UnreadBuffer())-len(bytes.TrimLeft(dec.UnreadBuffer(), " \t\r\n:,")))
	return &shapeError{reason: fmt.Sprintf("%s: got JSON %s, want %s", what, got, want), offset: at}
}

// jsonString returns the string a raw JSON value holds: ok is false when
// it is neither a string nor null (or absent).
func jsonString(v []byte) (s string, ok bool) {
	switch {
	case v == nil || string(v) == "null":
		return "", true
	case len(v) < 2 || v[0] != '"':
		return "", false
	case isPlainASCII(v[1 : len(v)-1]):
		return string(v[1 : len(v)-1]), true
	}
	u, err := jsontext.AppendUnquote(nil, v)
	return string(u), err == nil
}

// isPlainASCII reports whether b is printable ASCII without escapes, so
// that it is its own JSON string content.
func isPlainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '\\' || c == '"' {
			return false
		}
	}
	return true
}

// kindName names the JSON type of a raw value.
func kindName(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	return kindNames[jsontext.Value(v).Kind()]
}

var kindNames = map[jsontext.Kind]string{'n': "null", 'f': "boolean", 't': "boolean", '"': "string", '0': "number", '{': "object", '[': "array"}
