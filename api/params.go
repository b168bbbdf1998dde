package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// MaxBodyBytes caps a request body.
const MaxBodyBytes = 1 << 20

// Bounds of parameters, wherever they come from: a longer value or more
// values are answered 400 before any is used.
const (
	// MaxParamBytes caps one parameter value.
	MaxParamBytes = 4 << 10
	// MaxParamValues caps the number of parameter values of a request.
	MaxParamValues = 256
)

// ignoredParams are accepted and ignored: ExtJS (the Proxmox web UI) adds
// "_dc" to GET requests to defeat caches.
var ignoredParams = map[string]bool{"_dc": true}

// params are a request's parameters from the query string and the body
// (a form or a JSON object), merged. Handlers read them with the typed
// getters, which record what is wrong per parameter, then call done, which
// also rejects every parameter no getter asked for.
type params struct {
	values map[string][]string
	used   map[string]bool
	errs   map[string]string
}

// readParams reads the query string and the body of r.
func readParams(w http.ResponseWriter, r *http.Request) (*params, *apiError) {
	p := &params{values: map[string][]string{}, used: map[string]bool{}, errs: map[string]string{}}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid query string: %v", err)
	}
	for k, v := range q {
		p.values[k] = append(p.values[k], v...)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return p.bounded()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", MaxBodyBytes)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errorf(http.StatusRequestTimeout, "request body not received within %s", ReadTimeout)
		}
		return nil, errorf(http.StatusBadRequest, "read request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return p.bounded()
	}
	mediaType := "application/x-www-form-urlencoded" // curl -d's type, also when none is sent
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mediaType, _, err = mime.ParseMediaType(ct); err != nil {
			return nil, errorf(http.StatusUnsupportedMediaType, "invalid Content-Type")
		}
	}
	switch mediaType {
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "invalid form body: %v", err)
		}
		for k, v := range form {
			p.values[k] = append(p.values[k], v...)
		}
	case "application/json":
		if err := p.addJSON(body); err != nil {
			return nil, err
		}
	default:
		return nil, errorf(http.StatusUnsupportedMediaType, "unsupported Content-Type %q: send application/json or application/x-www-form-urlencoded", clip(mediaType))
	}
	return p.bounded()
}

// bounded refuses more than MaxParamValues values and any value longer
// than MaxParamBytes, naming the parameter (clipped).
func (p *params) bounded() (*params, *apiError) {
	n := 0
	for name, vals := range p.values {
		n += len(vals)
		for _, v := range vals {
			if len(v) > MaxParamBytes {
				return nil, badParam(clip(name), "value of %d bytes: the limit is %d", len(v), MaxParamBytes)
			}
		}
	}
	if n > MaxParamValues {
		return nil, errorf(http.StatusBadRequest, "%d parameter values: the limit is %d", n, MaxParamValues)
	}
	return p, nil
}

// addJSON adds the members of a JSON object body. Strings, numbers and
// booleans are taken as their text (booleans as 1 or 0), arrays as
// repeated values and null as absent.
func (p *params) addJSON(body []byte) *apiError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return errorf(http.StatusBadRequest, "invalid JSON body: want an object of parameters")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, "invalid JSON body: data after the object")
	}
	for k, v := range obj {
		var vals []string
		ok := true
		if list, isList := v.([]any); isList {
			for _, e := range list {
				s, scalar := jsonScalar(e)
				ok = ok && scalar && e != nil
				vals = append(vals, s)
			}
		} else if v != nil {
			var s string
			s, ok = jsonScalar(v)
			vals = []string{s}
		}
		if !ok {
			p.used[k] = true
			p.errs[clip(k)] = "want a string, number or boolean, or a list of them"
			continue
		}
		p.values[k] = append(p.values[k], vals...)
	}
	return nil
}

func jsonScalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		if v {
			return "1", true
		}
		return "0", true
	}
	return "", false
}

// fail records what is wrong with parameter name (the first reason wins).
func (p *params) fail(name, format string, args ...any) {
	if _, ok := p.errs[name]; !ok {
		p.errs[name] = fmt.Sprintf(format, args...)
	}
}

// single returns the one value of name; given more than once is an error.
func (p *params) single(name string) (string, bool) {
	p.used[name] = true
	v := p.values[name]
	switch len(v) {
	case 0:
		return "", false
	case 1:
		return v[0], true
	}
	p.fail(name, "given %d times, want one value", len(v))
	return "", false
}

// str returns the value of name, "" if absent.
func (p *params) str(name string) string {
	s, _ := p.single(name)
	return s
}

// integer returns the value of name as an integer of at least min, or def
// if it is absent.
func (p *params) integer(name string, def, min int64) int64 {
	s, ok := p.single(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		p.fail(name, "type check ('integer') failed - got '%s'", clip(s))
		return def
	}
	if n < min {
		p.fail(name, "value must have a minimum value of %d (got %d)", min, n)
		return def
	}
	return n
}

// boolean returns the value of name as Proxmox reads booleans: 1, 0,
// true, false, yes, no, on or off in any case; false if absent.
func (p *params) boolean(name string) bool {
	s, ok := p.single(name)
	if !ok {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	p.fail(name, "type check ('boolean') failed - got '%s'", clip(s))
	return false
}

// list returns the values of name, repeated or comma separated, without
// empty items.
func (p *params) list(name string) []string {
	p.used[name] = true
	var out []string
	for _, v := range p.values[name] {
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// done rejects the parameters no getter asked for and returns the 400
// answer if anything is wrong.
func (p *params) done() *apiError {
	for name := range p.values {
		if !p.used[name] && !ignoredParams[name] {
			p.fail(clip(name), "property is not defined in schema and the schema does not allow additional properties")
		}
	}
	if len(p.errs) > 0 {
		return paramError(p.errs)
	}
	return nil
}

// clip shortens a value echoed in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// toInt converts a parameter that fits in int64 to int, saturating.
func toInt(n int64) int {
	if n > math.MaxInt {
		return math.MaxInt
	}
	return int(n)
}
