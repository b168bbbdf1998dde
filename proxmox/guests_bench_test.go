package proxmox

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// BenchmarkGuests lists a cluster of 300 guests with the fields PVE's
// /cluster/resources?type=vm gives a running guest (about 330 bytes each),
// over loopback TLS: the client's cost of one guest list.
func BenchmarkGuests(b *testing.B) {
	payload := guestsPayload(300)
	ts := startTLS(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(payload)
	}))
	c := newTestClient(b, testConfig(task.PVE, ts.endpoint()))
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		gl, err := c.Guests(context.Background())
		if err != nil || len(gl.Guests) != 300 {
			b.Fatalf("%d guests, %v", len(gl.Guests), err)
		}
	}
}

// BenchmarkDecodeGuests is decodeGuests alone on BenchmarkGuests' payload.
func BenchmarkDecodeGuests(b *testing.B) {
	payload := guestsPayload(300)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		gl, err := decodeGuests((&body{r: bytes.NewReader(payload)}).tokens())
		if err != nil || len(gl.Guests) != 300 {
			b.Fatalf("%d guests, %v", len(gl.Guests), err)
		}
	}
}

// guestsPayload is a /cluster/resources?type=vm answer of n running guests
// with the fields PVE lists.
func guestsPayload(n int) []byte {
	var body strings.Builder
	body.WriteString(`{"data":[`)
	for i := range n {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"cpu":0.0123,"disk":0,"diskread":123456789,"diskwrite":98765432,"id":"qemu/%d","maxcpu":4,"maxdisk":34359738368,"maxmem":4294967296,"mem":2147483648,"name":"guest-%d","netin":123456,"netout":654321,"node":"pve%d","status":"running","template":0,"type":"qemu","uptime":86400,"vmid":%d,"tags":"prod;web","hastate":"started"}`, 100+i, i, 1+i%3, 100+i)
	}
	body.WriteString(`]}`)
	return []byte(body.String())
}
