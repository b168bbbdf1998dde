package cache

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestNumberFormats checks the line encoder's number writers against
// strconv and fmt, at the edges of their short ways and at random.
func TestNumberFormats(t *testing.T) {
	decs := []int64{0, 1, -1, 999_999_999, 1_000_000_000, 1_700_000_000, 9_999_999_999, 10_000_000_000, math.MaxInt64, math.MinInt64}
	hexes := []uint64{0, 1, 0xFFFFFFF, 0xFFFFFFFF, 0x100000000, 0xFFFFFFFFF, math.MaxUint64}
	rng := rand.New(rand.NewPCG(12, 12))
	for range 2000 {
		decs = append(decs, rng.Int64N(20_000_000_000)-5_000_000_000)
		hexes = append(hexes, rng.Uint64()>>rng.IntN(64))
	}
	for _, v := range decs {
		if got, want := string(appendDec([]byte("x"), v)), "x"+strconv.FormatInt(v, 10); got != want {
			t.Fatalf("appendDec(%d) = %q, want %q", v, got, want)
		}
	}
	for _, v := range hexes {
		if got, want := string(appendHex8([]byte("x"), v)), fmt.Sprintf("x%08X", v); got != want {
			t.Fatalf("appendHex8(%#x) = %q, want %q", v, got, want)
		}
	}
}
