package sim

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/taskfleet/taskfleet/task"
)

// Fault is what goes wrong with a node; the zero Fault is a healthy node.
// Faults are switched at run time with SetFault and take effect with the
// next request (connection faults with the next connection).
//
// A fault applies to the requests a node's own server receives, whichever
// node they ask about; only Offline also shows through the other nodes of
// its cluster (they answer 595 for it, and list it as offline).
type Fault struct {
	// Latency delays every answer.
	Latency time.Duration
	// ConnectLatency delays the TLS handshake of every new connection
	// (the server reads the ClientHello this much later).
	ConnectLatency time.Duration
	// Hang never answers: the request waits until the client gives up or
	// the server stops.
	Hang bool
	// Status answers every request with this status: 500 (with PVE's
	// JSON error body), 401, 403, 595 or 596 (PVE: empty body and the
	// socket error as reason phrase), or any other code >= 400.
	Status int
	// Malformed answers 200 with a body that is not valid JSON.
	Malformed bool
	// Truncated answers 200 with a Content-Length and closes the
	// connection halfway through the JSON.
	Truncated bool
	// Oversized answers 200 with a valid-looking task list of
	// OversizedBytes, streamed without being held in memory, so a
	// client's body limit must stop it.
	Oversized bool
	// Trickle sends the real body TrickleChunk bytes every
	// TrickleInterval, so only a whole-request timeout stops it.
	Trickle bool
	// WrongCert presents a certificate other than the advertised one in
	// new TLS handshakes.
	WrongCert bool
	// Offline takes the node down: its address refuses connections (open
	// ones are closed) and the other nodes of its cluster answer 595 for
	// it and list it as offline. Its tasks keep running meanwhile.
	Offline bool
	// BadItems starts every task list with two items a client must skip:
	// one with an invalid upid and one without starttime. Neither is part
	// of the ground truth.
	BadItems bool
	// NoAudit is a token that sees only its own tasks: it lacks the audit
	// privilege (PVE: Sys.Audit on /; PBS: Sys.Audit on /system/tasks,
	// given by the Audit role), so task lists hide every other user's
	// tasks and /access/permissions does not list it. See audit.go.
	NoAudit bool
}

// Sizes and rates of the body faults.
const (
	OversizedBytes  = 1 << 30 // length of an Oversized body before compression
	TrickleChunk    = 16      // bytes per write of a Trickle body
	TrickleInterval = time.Second
)

// SetFault sets the fault of one node, or with node "" of every node of
// the remote (and of nodes added to it later). The zero Fault clears it.
// Unknown names are ignored.
func (f *Fleet) SetFault(remoteID, nodeName string, fl Fault) {
	f.mu.Lock()
	r := f.remotes[remoteID]
	if r == nil {
		f.mu.Unlock()
		return
	}
	var nodes []*node
	for _, n := range r.nodes {
		if nodeName == "" || n.name == nodeName {
			nodes = append(nodes, n)
		}
	}
	if nodeName == "" {
		r.fault = fl
	}
	serving := f.state == started
	f.mu.Unlock()
	for _, n := range nodes {
		f.setNodeFault(n, fl, serving)
	}
}

// SetFaultAll sets the fault of every node of every remote, e.g. a base
// latency for a benchmark.
func (f *Fleet) SetFaultAll(fl Fault) {
	f.mu.RLock()
	ids := append([]string(nil), f.ids...)
	f.mu.RUnlock()
	for _, id := range ids {
		f.SetFault(id, "", fl)
	}
}

// setNodeFault switches a node's fault, taking it down or up as needed.
func (f *Fleet) setNodeFault(n *node, fl Fault, serving bool) {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	old := n.fault.Swap(&fl)
	if old.Offline == fl.Offline || !serving {
		return
	}
	if fl.Offline {
		n.stopLocked()
		f.log.Debug().Str("remote", n.remote.id).Str("node", n.name).Msg("node offline")
		return
	}
	if err := f.startLocked(n); err != nil {
		f.log.Error().Err(err).Str("remote", n.remote.id).Str("node", n.name).Msg("node cannot come back online")
		return
	}
	f.log.Debug().Str("remote", n.remote.id).Str("node", n.name).Msg("node online")
}

// malformed breaks a JSON body: half of it, then a NUL byte, which JSON
// allows nowhere.
func malformed(body []byte) []byte {
	out := append([]byte(nil), body[:len(body)/2]...)
	return append(out, "\x00<html>proxy error</html>"...)
}

// writeTruncated declares the whole body but sends half of it and closes
// the connection.
func (s *nodeServer) writeTruncated(w http.ResponseWriter, rep reply) {
	hdr := s.headers(rep)
	hdr.Set("Content-Length", strconv.Itoa(len(rep.body)))
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\n")
	hdr.Write(buf)
	buf.WriteString("\r\n")
	buf.Write(rep.body[:len(rep.body)/2])
	buf.Flush()
}

// writeTrickle sends body slowly; it gives up when the server stops or
// the client goes away.
func (s *nodeServer) writeTrickle(w http.ResponseWriter, r *http.Request, body []byte) {
	rc := http.NewResponseController(w)
	rc.Flush()
	for len(body) > 0 {
		if !s.sleep(r, TrickleInterval) {
			s.abort(w)
			return
		}
		n := min(TrickleChunk, len(body))
		if _, err := w.Write(body[:n]); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		body = body[n:]
	}
}

// writeOversized streams a task list of OversizedBytes (before
// compression); it stops early when the client goes away or the server
// stops. Each item is a plausible, distinct task.
func (s *nodeServer) writeOversized(w http.ResponseWriter, r *http.Request, gz bool) {
	hdr := w.Header()
	for k, v := range s.headers(reply{status: http.StatusOK}) {
		hdr[k] = v
	}
	var out io.Writer = w
	if gz {
		hdr.Set("Content-Encoding", "gzip")
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		defer zw.Close()
		out = zw
	}
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(out, 32<<10)
	defer bw.Flush()
	written, _ := bw.WriteString(`{"data":[`)
	pbs := s.n.remote.kind == task.PBS
	node := []byte(s.n.name) // a node name needs no JSON escaping
	item := make([]byte, 0, 512)
	for i := 0; written < OversizedBytes; i++ {
		if i%256 == 0 && (isDone(s.done) || r.Context().Err() != nil) {
			s.abort(w) // no final chunk: the client must not see an end
			return
		}
		start := int64(1_700_000_000 - i)
		vmid := int64(100 + i%900)
		item = item[:0]
		if i > 0 {
			item = append(item, ',')
		}
		item = append(item, `{"upid":"UPID:`...)
		item = append(item, node...)
		if pbs {
			// The proxy daemon's pid and start (1572, 25898), a task counter.
			item = append(item, ":00000624:0000652A:"...)
			item = appendHex8(item, uint64(i))
			item = append(item, ':')
			item = appendHex8(item, uint64(start))
			item = append(item, `:backup:store1\\x3avm-`...)
			item = strconv.AppendInt(item, vmid, 10)
			item = append(item, `:root@pam:","node":"localhost","pid":1572,"pstart":25898,"starttime":`...)
			item = strconv.AppendInt(item, start, 10)
			item = append(item, `,"worker_type":"backup","worker_id":"store1:vm/`...)
			item = strconv.AppendInt(item, vmid, 10)
			item = append(item, '"')
		} else {
			pid := uint64(1000 + i%4000000)
			item = append(item, ':')
			item = appendHex8(item, pid)
			item = append(item, ":00BC614E:"...) // pstart 12345678
			item = appendHex8(item, uint64(start))
			item = append(item, ":qmstart:"...)
			item = strconv.AppendInt(item, vmid, 10)
			item = append(item, `:root@pam:","node":"`...)
			item = append(item, node...)
			item = append(item, `","pid":`...)
			item = strconv.AppendUint(item, pid, 10)
			item = append(item, `,"pstart":12345678,"starttime":`...)
			item = strconv.AppendInt(item, start, 10)
			item = append(item, `,"type":"qmstart","id":"`...)
			item = strconv.AppendInt(item, vmid, 10)
			item = append(item, `","user":"root@pam"`...)
		}
		item = append(item, `,"endtime":`...)
		item = strconv.AppendInt(item, start+3, 10)
		item = append(item, `,"status":"OK"}`...)
		n, err := bw.Write(item)
		written += n
		if err != nil {
			return
		}
	}
	bw.WriteString(`],"total":` + strconv.Itoa(OversizedBytes) + `}`)
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// appendHex8 appends v as at least 8 upper-case hex digits, as in a UPID.
func appendHex8(b []byte, v uint64) []byte {
	const digits = "0123456789ABCDEF"
	var tmp [16]byte
	i := len(tmp)
	for v > 0 || i > len(tmp)-8 {
		i--
		tmp[i] = digits[v&0xF]
		v >>= 4
	}
	return append(b, tmp[i:]...)
}
