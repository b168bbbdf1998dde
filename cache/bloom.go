package cache

import "math/bits"

// bloom is a Bloom filter of the tasks of a segment. Apply asks it whether
// a segment may hold a task before it searches the segment: a new task
// (the common case) is then rejected with a few probes of a small bit array
// instead of a binary search through megabytes of records, whose every
// step is a cache miss. It is blocked: the probes of a task all fall in
// one 512-bit block (a cache line), so a look-up costs one cache miss, not
// one per probe. 10 bits per task and 7 probes give about 1% false
// positives (TestBloomFalsePositives).
type bloom struct {
	words []uint64
	mask  uint64 // number of blocks - 1 (a power of two)
}

const (
	bloomBitsPerTask = 10
	bloomProbes      = 7
	// bloomMinTasks is the segment size from which a filter pays off.
	bloomMinTasks   = 4096
	bloomBlockBits  = 512
	bloomBlockWords = bloomBlockBits / 64
)

func newBloom(n int) bloom {
	nbits := max(uint64(1)<<bits.Len64(uint64(n*bloomBitsPerTask)), bloomBlockBits)
	return bloom{words: make([]uint64, nbits/64), mask: nbits/bloomBlockBits - 1}
}

// block returns the words of the block of hash h. The probes take 9 bits
// each from h; the block is chosen by a second hash of h.
func (f *bloom) block(h uint64) []uint64 {
	b := mix(h, 0x8ebc6af09c88c6e3) & f.mask * bloomBlockWords
	return f.words[b : b+bloomBlockWords : b+bloomBlockWords]
}

func (f *bloom) add(h uint64) {
	blk := f.block(h)
	for range bloomProbes {
		b := h & (bloomBlockBits - 1)
		blk[b/64] |= 1 << (b % 64)
		h >>= 9
	}
}

// mayContain reports false when the task of hash h is certainly not in the
// segment.
func (f *bloom) mayContain(h uint64) bool {
	if f.words == nil {
		return true
	}
	blk := f.block(h)
	for range bloomProbes {
		b := h & (bloomBlockBits - 1)
		if blk[b/64]&(1<<(b%64)) == 0 {
			return false
		}
		h >>= 9
	}
	return true
}

// taskHash hashes the identity of a task: the UPID fields and the remote
// (a non-canonical UPID has the same fields as any text that parses to
// them, so equal tasks hash equally). Codes are those of the segment's
// dict.
func taskHash(r *rec) uint64 {
	h := mix(uint64(r.start), r.pstart)
	h = mix(h, r.taskID^uint64(r.pid)<<32^uint64(r.flags&flagPBS))
	h = mix(h, uint64(r.remote)|uint64(r.node)<<32)
	h = mix(h, uint64(r.typ)|uint64(r.user)<<32)
	return mix(h, uint64(r.id))
}

// mix combines two words (the wyhash mixing step).
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a^0xa0761d6478bd642f, b^0xe7037ed1a0b428db)
	return hi ^ lo
}
