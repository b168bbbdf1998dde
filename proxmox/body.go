package proxmox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	if string(b) == "null" {
		*f = flexInt{}
		return nil
	}
	var v int64
	var err error
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	} else {
		v, err = strconv.ParseInt(string(b), 10, 64) // no copy of b: a task list has two numbers a task
	}
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
