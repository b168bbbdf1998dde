package proxmox

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/taskfleet/taskfleet/task"
)

func TestCapReader(t *testing.T) {
	for _, tc := range []struct {
		size, max int64
		tooLarge  bool
	}{
		{size: 0, max: 10},
		{size: 9, max: 10},
		{size: 10, max: 10},
		{size: 11, max: 10, tooLarge: true},
		{size: 1 << 20, max: 10, tooLarge: true},
	} {
		var count atomic.Int64
		src := &countingReader{r: bytes.NewReader(make([]byte, tc.size))}
		cr := newCapReader(iotest.OneByteReader(src), tc.max, &count)
		got, err := io.ReadAll(cr)
		if tc.tooLarge != errors.Is(err, errBodyTooLarge) {
			t.Errorf("size %d, max %d: err %v", tc.size, tc.max, err)
		}
		if !tc.tooLarge && (err != nil || int64(len(got)) != tc.size) {
			t.Errorf("size %d, max %d: read %d, %v", tc.size, tc.max, len(got), err)
		}
		// Never more than max+1 bytes are taken from the source.
		if limit := min(tc.size, tc.max+1); src.n != limit || count.Load() != limit {
			t.Errorf("size %d, max %d: source gave %d, counted %d, want %d", tc.size, tc.max, src.n, count.Load(), limit)
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestBodyCapExact: a body of exactly MaxBodyBytes is decoded, one byte
// more is refused.
func TestBodyCapExact(t *testing.T) {
	const max = 4096
	for _, size := range []int{max, max + 1} {
		body := `{"data":[]}` + strings.Repeat(" ", size-len(`{"data":[]}`))
		srv := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, body)
		}))
		cfg := testConfig(task.PVE, srv.endpoint())
		cfg.MaxBodyBytes = max
		c := newTestClient(t, cfg)
		_, err := c.ListTasks(context.Background(), "pve1", ListQuery{})
		var tl *BodyTooLargeError
		if (size > max) != errors.As(err, &tl) || size == max && err != nil {
			t.Errorf("body of %d bytes, cap %d: %v", size, max, err)
		}
	}
}

// hugeBody streams a valid task list of about size bytes (Content-Length
// announced when not compressed; gzip-compressed and chunked otherwise),
// counting the bytes it manages to write before the client hangs up.
func hugeBody(size int64, gz bool, written *atomic.Int64, done chan<- struct{}) http.HandlerFunc {
	item := []byte(`{"upid":"UPID:pve1:0001A2B3:00C0FFEE:65000000:vzdump:100:root@pam:","starttime":1694498816,"endtime":1694499000,"status":"OK","type":"vzdump","id":"100","user":"root@pam","node":"pve1","pid":107187,"pstart":12648430},`)
	chunk := bytes.Repeat(item, 32<<10/len(item))
	head, tail := `{"data":[`, `{}]}`
	n := (size - int64(len(head)+len(tail))) / int64(len(chunk))
	size = int64(len(head)+len(tail)) + n*int64(len(chunk))
	return func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		var out io.Writer = &countingWriter{w: w, n: written}
		if gz {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(out)
			defer zw.Close()
			out = zw
		} else {
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		}
		if _, err := io.WriteString(out, head); err != nil {
			return
		}
		for range n {
			if _, err := out.Write(chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(out, tail)
	}
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// TestBodyCapHuge proves the cap is enforced while reading: against a
// server that sends a 1 GiB task list, the client reads exactly cap+1
// decompressed bytes, returns BodyTooLargeError, and allocates a small
// fraction of the body; the server manages to write little of it. With
// gzip the cap applies to the decompressed bytes, though the compressed
// stream is far smaller.
func TestBodyCapHuge(t *testing.T) {
	const (
		body = 1 << 30
		max  = 1 << 20
	)
	for _, gz := range []bool{false, true} {
		var written atomic.Int64
		done := make(chan struct{})
		srv := startTLS(t, hugeBody(body, gz, &written, done))
		cfg := testConfig(task.PVE, srv.endpoint())
		cfg.MaxBodyBytes = max
		c := newTestClient(t, cfg)

		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := c.ListTasks(context.Background(), "pve1", ListQuery{})
		runtime.ReadMemStats(&after)
		<-done // the server stops once the client has hung up

		var tl *BodyTooLargeError
		if !errors.As(err, &tl) {
			t.Fatalf("gzip %v: want BodyTooLargeError, got %v", gz, err)
		}
		st := c.Stats()
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("gzip %v: body %d B, cap %d B; client read %d B of body (%d B from the network) and allocated %d B in total (%.1f x cap, 1/%d of the body); server wrote %d B",
			gz, int64(body), max, st.BodyBytes, st.BytesRead, alloc, float64(alloc)/max, body/alloc, written.Load())
		if st.BodyBytes != max+1 {
			t.Errorf("gzip %v: client read %d body bytes, want exactly cap+1 = %d", gz, st.BodyBytes, max+1)
		}
		if alloc > body/64 {
			t.Errorf("gzip %v: allocated %d bytes for a body of %d", gz, alloc, int64(body))
		}
		if written.Load() > body/64 {
			t.Errorf("gzip %v: server wrote %d bytes of %d: the client kept reading", gz, written.Load(), int64(body))
		}
		if gz && st.BytesRead > max/4 {
			t.Errorf("gzip: read %d bytes from the network: the cap is not on decompressed bytes", st.BytesRead)
		}
	}
}
