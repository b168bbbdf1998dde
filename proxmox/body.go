package proxmox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// errBodyTooLarge is returned by capReader once the body passes the cap.
var errBodyTooLarge = errors.New("body too large")

// capReader reads at most max bytes and fails with errBodyTooLarge as soon
// as the body has more: it lets through max+1 bytes at most, so a body of
// exactly max bytes is accepted and nothing beyond the first extra byte is
// ever read.
type capReader struct {
	r     io.Reader
	left  int64 // bytes that may still be read, the one extra byte included
	read  int64
	err   error         // the first read error other than io.EOF (errBodyTooLarge included)
	count *atomic.Int64 // the client's body byte counter
}

func newCapReader(r io.Reader, max int64, count *atomic.Int64) *capReader {
	return &capReader{r: r, left: max + 1, count: count}
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.err = errBodyTooLarge
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	c.read += int64(n)
	c.count.Add(int64(n))
	if c.left <= 0 {
		c.err = errBodyTooLarge
		return n, errBodyTooLarge
	}
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// flexInt is an integer that Perl may have serialised as a string ("0",
// "1637122234"). JSON null or an absent field leave ok false.
type flexInt struct {
	v  int64
	ok bool
}

// UnmarshalJSON accepts a JSON integer or a string holding one.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*f = flexInt{}
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %s", shorten(string(b), 40))
	}
	*f = flexInt{v: v, ok: true}
	return nil
}

// flexBool is a boolean that Perl sends as 0/1, possibly quoted, and Rust
// as true/false.
type flexBool bool

// UnmarshalJSON accepts true/false, 0/1 and "0"/"1".
func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch strings.Trim(string(b), `"`) {
	case "true", "1":
		*f = true
	case "false", "0", "", "null":
		*f = false
	default:
		return fmt.Errorf("not a boolean: %s", shorten(string(b), 40))
	}
	return nil
}

// envelope is the JSON wrapper of every /api2/json answer.
type envelope[T any] struct {
	Data  *T      `json:"data"`
	Total flexInt `json:"total"`
}

// decodeList decodes a list answer, {"data":[item, ...], "total": n}, one
// item at a time: the decoder then buffers one item, not the whole body,
// so memory stays at what the caller keeps of each item. It returns the
// total attribute, -1 when absent.
func decodeList(dec *json.Decoder, each func(raw json.RawMessage)) (total int, err error) {
	total = -1
	if err := expectDelim(dec, '{', "top level", "object"); err != nil {
		return 0, err
	}
	seenData := false
	for dec.More() {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return 0, syntaxAt(err, off, "")
		}
		switch key, _ := tok.(string); key {
		case "data":
			if err := expectDelim(dec, '[', "data", "array"); err != nil {
				return 0, err
			}
			for i := 0; dec.More(); i++ {
				off := dec.InputOffset()
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return 0, syntaxAt(err, off, fmt.Sprintf(" in task item %d", i))
				}
				each(raw)
			}
			off := dec.InputOffset()
			if _, err := dec.Token(); err != nil {
				return 0, syntaxAt(err, off, "")
			}
			seenData = true
		case "total":
			off := dec.InputOffset()
			var f flexInt
			if err := dec.Decode(&f); err != nil {
				return 0, syntaxAt(err, off, " in total")
			}
			if f.ok {
				total = int(f.v)
			}
		default:
			off := dec.InputOffset()
			if err := skipValue(dec); err != nil {
				return 0, syntaxAt(err, off, "")
			}
		}
	}
	off := dec.InputOffset()
	if _, err := dec.Token(); err != nil {
		return 0, syntaxAt(err, off, "")
	}
	if !seenData {
		return 0, &shapeError{reason: `no "data" in the answer`, offset: -1}
	}
	return total, nil
}

// syntaxAt turns an error of a decode that started at offset off into a
// shapeError at off, the start of the value that failed. (The offset in a
// json.SyntaxError counts only the bytes the decoder scanned as values, not
// the delimiters it read as tokens, so it is not a position in the body.)
// Truncation and read errors pass unchanged.
func syntaxAt(err error, off int64, where string) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return &shapeError{reason: "invalid JSON" + where, offset: off, err: err}
	}
	var shape *shapeError
	if errors.As(err, &shape) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, errBodyTooLarge) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// An UnmarshalJSON method refused the value (a total that is no number).
	return &shapeError{reason: "invalid value" + where, offset: off, err: err}
}

// expectDelim reads the next token and fails unless it is the delimiter d.
func expectDelim(dec *json.Decoder, d json.Delim, field, want string) error {
	off := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return syntaxAt(err, off, "")
	}
	if got, ok := tok.(json.Delim); ok && got == d {
		return nil
	}
	return &shapeError{reason: fmt.Sprintf("%s: got JSON %s, want %s", field, tokenKind(tok), want), offset: off}
}

// tokenKind names a token's JSON type.
func tokenKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "object"
		}
		return "array"
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
}

// skipValue reads and drops the next value, one token at a time.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// errorBodyLimit bounds how much of an error body is read for its message.
const errorBodyLimit = 64 << 10

// errorMessage extracts the server's text from an error body: PVE sends
// {"data":null,"message":...,"errors":{param: msg}}, PBS the plain error
// text (even with a JSON content type). Text equal to the reason phrase is
// not repeated. The result is one line of at most 1 KiB.
func errorMessage(reason string, body []byte) string {
	parts := []string{}
	if reason != "" {
		parts = append(parts, reason)
	}
	body = bytes.TrimSpace(body)
	var pve struct {
		Message *string           `json:"message"`
		Errors  map[string]string `json:"errors"`
	}
	switch {
	case len(body) == 0:
	case body[0] == '{' && json.Unmarshal(body, &pve) == nil:
		if pve.Message != nil && strings.TrimSpace(*pve.Message) != reason {
			parts = append(parts, *pve.Message)
		}
		keys := make([]string, 0, len(pve.Errors))
		for k := range pve.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, k+": "+pve.Errors[k])
		}
	default:
		if s := string(body); s != reason {
			parts = append(parts, s)
		}
	}
	msg := strings.Join(strings.Fields(strings.ToValidUTF8(strings.Join(parts, ": "), "?")), " ")
	return shorten(msg, 1024)
}
