package sim

import (
	"bytes"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// The simulator answers thousands of requests a second in the benchmarks,
// in the same process as taskfleet, so its own costs must stay small:
// gzip writers are pooled (a new one allocates about 1 MB) and are
// klauspost/compress's (at BestSpeed twice as fast as the standard
// library's on a guest list, BenchmarkGzipGuestList; still plain gzip),
// and a node keeps its last task-list answer, JSON and compressed, for as
// long as nothing on the node changed and the same query comes again (a
// steady refresh asks the same "since" every time).

// gzipPool holds gzip writers at BestSpeed, reset for each use.
var gzipPool = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return zw
}}

// gzipBytes compresses body with a pooled writer.
func gzipBytes(body []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(body)/4 + 64)
	zw := gzipPool.Get().(*gzip.Writer)
	zw.Reset(&b)
	zw.Write(body)
	zw.Close()
	gzipPool.Put(zw)
	return b.Bytes()
}

// cachedReply is an answer kept for a key (the query) at a version of the
// state it was built from.
type cachedReply struct {
	key     string
	version uint64
	rep     reply
	ok      bool
}

// get returns the kept answer for key at version.
func (c *cachedReply) get(key string, version uint64) (reply, bool) {
	if !c.ok || c.key != key || c.version != version {
		return reply{}, false
	}
	return c.rep, true
}

// put keeps rep for key at version, with its compressed body when it
// will be sent compressed (so that repeated answers compress once).
func (c *cachedReply) put(key string, version uint64, rep reply) reply {
	if len(rep.body) > gzipMin {
		rep.gz = gzipBytes(rep.body)
	}
	*c = cachedReply{key: key, version: version, rep: rep, ok: true}
	return rep
}
