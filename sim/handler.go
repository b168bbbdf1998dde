package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

// reply is an answer before it is written.
type reply struct {
	status int
	reason string // reason phrase (PVE errors); "" for the standard text
	body   []byte // JSON, or PBS's plain error text
	gz     []byte // body gzip-compressed, when cached; nil: compress when sending
	items  int    // task items in body, for Stats
	// cluster marks a /cluster/tasks answer, for Stats.
	cluster bool
}

// gzipMin: pveproxy compresses bodies longer than this.
const gzipMin = 1024

// ServeHTTP answers one request: faults first, then authentication, then
// the endpoint. Nothing a client sends makes it panic.
func (s *nodeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.wg.Add(1)
	defer s.wg.Done()
	defer s.recoverPanic(w, r)
	rm := s.n.remote
	nth := int64(1)
	if ci, ok := r.Context().Value(connInfoKey{}).(*connInfo); ok {
		nth = ci.requests.Add(1)
	}
	if nth == 1 && r.TLS != nil && r.TLS.DidResume {
		rm.stats.resumed.Add(1)
	}
	segs, apiPath := apiSegments(r.URL)
	ep := classify(segs)
	if rm.kind == task.PBS && ep != epTaskList && ep != epTaskStatus && ep != epTaskLog {
		ep = epOther // PBS has no /nodes or /cluster endpoints here
	}
	rm.stats.requests.Add(1)
	rm.stats.byEndpoint[ep].Add(1)

	fl := *s.n.fault.Load()
	if !s.sleep(r, fl.Latency) {
		s.abort(w)
		return
	}
	if fl.Hang {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		s.abort(w)
		return
	}
	var rep reply
	switch {
	case fl.Status != 0:
		rep = s.faultReply(fl.Status)
	case !s.authorized(r):
		if !s.sleep(r, s.f.cfg.AuthFailureDelay) {
			s.abort(w)
			return
		}
		rep = s.unauthorized(r)
	case !apiPath:
		rep = s.notFound(r)
	case rm.kind == task.PBS:
		rep = s.routePBS(r, segs, fl)
	default:
		rep = s.routePVE(r, segs, fl)
	}
	s.write(w, r, rep, fl, nth)
}

// recoverPanic turns a panic of a handler (a bug) into a logged error,
// a counted one (tests assert there is none) and a dropped connection.
func (s *nodeServer) recoverPanic(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	s.f.panics.Add(1)
	s.f.log.Error().Str("remote", s.n.remote.id).Str("node", s.n.name).Str("path", r.URL.RequestURI()).
		Str("panic", fmt.Sprint(v)).Msg("handler panicked")
	s.abort(w)
}

// abort drops the connection without an answer: a request interrupted
// by the server stopping (or the client leaving) must not end in the
// empty 200 net/http would send for a handler that wrote nothing.
func (s *nodeServer) abort(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
	}
}

// apiSegments splits an /api2/json/... path into unescaped segments.
func apiSegments(u *url.URL) ([]string, bool) {
	rest, ok := strings.CutPrefix(u.EscapedPath(), "/api2/json/")
	if !ok {
		return nil, false
	}
	rest = strings.TrimSuffix(rest, "/")
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		v, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = v
	}
	return parts, true
}

// write sends rep the way the product does, with the body faults of fl.
func (s *nodeServer) write(w http.ResponseWriter, r *http.Request, rep reply, fl Fault, nth int64) {
	rm := s.n.remote
	pve := rm.kind == task.PVE
	gz := pve && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip")
	if rep.status >= 400 {
		rm.stats.errors.Add(1)
	}
	if rep.status == http.StatusOK {
		switch {
		case fl.Oversized:
			s.writeOversized(w, r, gz)
			return
		case fl.Truncated:
			s.writeTruncated(w, rep)
			return
		case fl.Malformed:
			rep.body, rep.gz = malformed(rep.body), nil
		}
	}
	rm.stats.tasksServed.Add(int64(rep.items))
	if rep.cluster {
		rm.stats.clusterServed.Add(int64(rep.items))
	}
	if pve && rep.status >= 400 {
		s.writeRaw(w, rep)
		return
	}
	hdr := w.Header()
	for k, v := range s.headers(rep) {
		hdr[k] = v
	}
	body := rep.body
	if gz && len(body) > gzipMin {
		if rep.gz != nil {
			body = rep.gz
		} else {
			body = gzipBytes(body)
		}
		hdr.Set("Content-Encoding", "gzip")
	}
	if max := s.f.requestsPerConn(rm.kind); max > 0 && nth >= int64(max) {
		hdr.Set("Connection", "close")
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rep.status)
	if fl.Trickle && rep.status == http.StatusOK {
		s.writeTrickle(w, r, body)
		return
	}
	w.Write(body)
}

// headers returns the headers the product sends with rep.
func (s *nodeServer) headers(rep reply) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Date", s.date())
	if s.n.remote.kind == task.PVE {
		now := time.Now().UTC().Format(http.TimeFormat)
		h.Set("Server", "pve-api-daemon/3.0")
		h.Set("Cache-Control", "max-age=0")
		h.Set("Pragma", "no-cache")
		h.Set("Expires", now)
		if len(rep.body) == 0 && rep.status >= 400 {
			h.Del("Content-Type")
		}
	}
	return h
}

// writeRaw writes an error answer as pveproxy does: its own reason phrase
// (which net/http cannot set), and the connection closed after it.
func (s *nodeServer) writeRaw(w http.ResponseWriter, rep reply) {
	reason := rep.reason
	if i := strings.IndexAny(reason, "\r\n"); i >= 0 {
		reason = reason[:i] // as pve-http-server: cut at the first line break
	}
	reason = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, reason)
	if reason == "" {
		reason = http.StatusText(rep.status)
	}
	hdr := s.headers(rep)
	hdr.Set("Connection", "close")
	hdr.Set("Date", s.date())
	hdr.Set("Content-Length", strconv.Itoa(len(rep.body)))
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil { // not HTTP/1.x: the standard reason phrase will do
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.WriteHeader(rep.status)
		w.Write(rep.body)
		return
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 %03d %s\r\n", rep.status, reason)
	hdr.Write(buf)
	buf.WriteString("\r\n")
	buf.Write(rep.body)
	buf.Flush()
}

// authorized checks the API token of a request.
func (s *nodeServer) authorized(r *http.Request) bool {
	rm := s.n.remote
	id, secret, ok := parseToken(rm.kind, r.Header.Get("Authorization"))
	return ok && id == rm.tokenID && secret == rm.secret
}

// parseToken extracts token id and secret from an Authorization header
// as the product's server does (auth/auth-formats.json):
//
//	PVE: "PVEAPIToken" at the start or after white space, then '=' or
//	     ' ', the value up to ';', URI-unescaped, split at the LAST '='.
//	PBS: "PBSAPIToken" at the start, then '=' or ' ', split at the FIRST
//	     ':', the secret percent-decoded.
func parseToken(kind task.Kind, h string) (id, secret string, ok bool) {
	if kind == task.PBS {
		rest, found := strings.CutPrefix(h, "PBSAPIToken")
		if !found || rest == "" || (rest[0] != '=' && rest[0] != ' ') {
			return "", "", false
		}
		id, sec, found := strings.Cut(rest[1:], ":")
		if !found {
			return "", "", false
		}
		sec, err := url.PathUnescape(sec)
		return id, sec, err == nil && validTokenID(id)
	}
	i := 0
	for {
		j := strings.Index(h[i:], "PVEAPIToken")
		if j < 0 {
			return "", "", false
		}
		i += j
		after := i + len("PVEAPIToken")
		if (i == 0 || h[i-1] == ' ' || h[i-1] == '\t') && after < len(h) && (h[after] == '=' || h[after] == ' ') {
			v := h[after+1:]
			if k := strings.IndexByte(v, ';'); k >= 0 {
				v = v[:k]
			}
			v, err := url.QueryUnescape(v)
			if err != nil {
				return "", "", false
			}
			k := strings.LastIndexByte(v, '=')
			if k < 0 {
				return "", "", false
			}
			return v[:k], v[k+1:], validTokenID(v[:k])
		}
		i = after
	}
}

// validTokenID checks user@realm!token: user without white space, ':' or
// '/'; realm and token name [A-Za-z][A-Za-z0-9.-_]+.
func validTokenID(s string) bool {
	user, rest, ok := strings.Cut(s, "@")
	if !ok || user == "" || strings.ContainsAny(user, " \t\n:/") {
		return false
	}
	realm, name, ok := strings.Cut(rest, "!")
	return ok && safeName(realm) && safeName(name)
}

func safeName(s string) bool {
	if len(s) < 2 || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !(c >= '0' && c <= '9') && c != '.' && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// unauthorized is the answer to a request without a valid token.
func (s *nodeServer) unauthorized(r *http.Request) reply {
	if s.n.remote.kind == task.PBS {
		return reply{status: http.StatusUnauthorized, body: []byte("authentication failed")}
	}
	if r.Header.Get("Authorization") == "" && r.Header.Get("Cookie") == "" {
		return reply{status: http.StatusUnauthorized, reason: "No ticket"}
	}
	return reply{status: http.StatusUnauthorized, reason: "Authentication failed!"}
}

// faultReply is the answer of a Status fault; a status that is not an
// error (below 400, or not three digits) counts as 500.
func (s *nodeServer) faultReply(status int) reply {
	if status < 400 || status > 999 {
		status = http.StatusInternalServerError
	}
	if s.n.remote.kind == task.PBS {
		text := http.StatusText(status)
		if status == http.StatusUnauthorized {
			text = "authentication failed"
		}
		if text == "" {
			text = "error " + strconv.Itoa(status)
		}
		return reply{status: status, body: []byte(strings.ToLower(text))}
	}
	switch status {
	case http.StatusUnauthorized:
		return reply{status: status, reason: "Authentication failed!"}
	case 595:
		return reply{status: status, reason: "Connection refused"}
	case 596:
		return reply{status: status, reason: "Connection timed out"}
	case http.StatusForbidden:
		return pveError(status, "Permission check failed", nil)
	case http.StatusInternalServerError:
		return pveError(status, "can't lock file '/var/lock/qemu-server/lock-203.conf' - got timeout", nil)
	}
	reason := http.StatusText(status)
	if reason == "" {
		reason = "Error"
	}
	return pveError(status, reason, nil)
}

// pveError is a PVE JSON error: {"data":null}, the parameter errors if
// any, and (since libpve-http-server-perl 5.2) the message.
func pveError(status int, reason string, errs map[string]string) reply {
	body := map[string]any{"data": nil, "message": reason}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	b, _ := json.Marshal(body)
	return reply{status: status, reason: reason, body: b}
}

// paramError is a 400 answer for invalid parameters.
func (s *nodeServer) paramError(errs map[string]string) reply {
	if s.n.remote.kind == task.PBS {
		var b strings.Builder
		b.WriteString("parameter verification failed")
		for _, k := range sortedKeys(errs) {
			fmt.Fprintf(&b, " - '%s': %s", k, errs[k])
		}
		return reply{status: http.StatusBadRequest, body: []byte(b.String())}
	}
	return pveError(http.StatusBadRequest, "Parameter verification failed.", errs)
}

// notFound answers a path the product does not have.
func (s *nodeServer) notFound(r *http.Request) reply {
	if s.n.remote.kind == task.PBS {
		return reply{status: http.StatusNotFound, body: []byte("Path '" + r.URL.Path + "' not found.")}
	}
	path := strings.TrimPrefix(r.URL.Path, "/api2/json")
	return pveError(http.StatusNotImplemented, "Method '"+r.Method+" "+path+"' not implemented", nil)
}

// jsonReply marshals {"data": data} plus total when total >= 0.
func jsonReply(data any, total, items int) reply {
	var v any = struct {
		Data any `json:"data"`
	}{data}
	if total >= 0 {
		v = struct {
			Data  any `json:"data"`
			Total int `json:"total"`
		}{data, total}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return pveError(http.StatusInternalServerError, "encode response: "+err.Error(), nil)
	}
	return reply{status: http.StatusOK, body: b, items: items}
}
