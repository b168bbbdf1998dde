package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"
)

// The simulator runs in the benchmark's process, so the process's CPU time
// includes the simulated remotes' work (TLS server handshakes, answering,
// gzip). To tell the two apart, every goroutine is labelled with the side
// it works for: goroutines inherit their creator's pprof labels, so
// starting the fleet under labelSim and taskfleet under labelTaskfleet
// labels the servers' connection goroutines and the daemon's actors,
// pollers and HTTP transports. A CPU profile taken during the measurement
// then attributes each sample to a side. Samples of unlabelled goroutines
// (the garbage collector's background workers, timer callbacks) are
// reported as "other": the collector works for both sides.
const labelKey = "bench_side"

// Side names of the CPU split.
const (
	labelSim       = "sim"
	labelTaskfleet = "taskfleet"
	labelBench     = "bench"
)

// withSide runs f with the goroutine labelled side; goroutines f starts
// inherit the label.
func withSide(side string, f func(ctx context.Context)) {
	pprof.Do(context.Background(), pprof.Labels(labelKey, side), f)
}

// CPUSplit is CPU time by side, from a CPU profile (100 samples a second).
type CPUSplit struct {
	Taskfleet time.Duration `json:"taskfleet_ns"` // the daemon: actors, pollers, clients, cache
	Sim       time.Duration `json:"sim_ns"`       // the simulated remotes
	Other     time.Duration `json:"other_ns"`     // unlabelled: GC background work, runtime, the benchmark itself
	OK        bool          `json:"ok"`           // false when no profile could be taken (one was already running)
}

// cpuProfile is a CPU profile in progress.
type cpuProfile struct {
	buf bytes.Buffer
	on  bool
}

// startCPUProfile starts profiling; if another profile runs, the split is
// simply not available.
func startCPUProfile() *cpuProfile {
	p := &cpuProfile{}
	p.on = pprof.StartCPUProfile(&p.buf) == nil
	return p
}

// stop ends the profile and attributes its samples. With save not "", it
// also writes the profile to that file (for go tool pprof; the samples
// carry the bench_side label, so -tagfocus=bench_side=taskfleet shows
// taskfleet's share alone); the error is that write's.
func (p *cpuProfile) stop(save string) (CPUSplit, error) {
	if !p.on {
		return CPUSplit{}, nil
	}
	pprof.StopCPUProfile()
	var err error
	if save != "" {
		if werr := os.WriteFile(save, p.buf.Bytes(), 0o644); werr != nil {
			err = fmt.Errorf("write CPU profile: %w", werr)
		}
	}
	by, perr := cpuByLabel(p.buf.Bytes(), labelKey)
	if perr != nil {
		return CPUSplit{}, err // the split is not available; the run goes on
	}
	return CPUSplit{
		Taskfleet: by[labelTaskfleet],
		Sim:       by[labelSim],
		Other:     by[""] + by[labelBench],
		OK:        true,
	}, err
}

// cpuByLabel sums the CPU time of a gzipped profile.proto by the value of
// one label ("" for samples without it). It decodes just the fields it
// needs: Profile.sample_type (1), Profile.sample (2) with its values (2)
// and labels (3), and Profile.string_table (6).
func cpuByLabel(gz []byte, key string) (map[string]time.Duration, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	type sample struct {
		values []int64
		labels [][2]int64 // key, str indexes
	}
	var (
		strs    []string
		samples []sample
		types   []int64 // sample_type type string indexes
	)
	err = protoFields(data, func(field int, wire int, v uint64, b []byte) error {
		switch {
		case field == 1 && wire == 2:
			return protoFields(b, func(f, w int, v uint64, _ []byte) error {
				if f == 1 && w == 0 {
					types = append(types, int64(v))
				}
				return nil
			})
		case field == 2 && wire == 2:
			var s sample
			err := protoFields(b, func(f, w int, v uint64, b []byte) error {
				switch {
				case f == 2 && w == 0:
					s.values = append(s.values, int64(v))
				case f == 2 && w == 2:
					for len(b) > 0 {
						x, n := binary.Uvarint(b)
						if n <= 0 {
							return errors.New("bad packed value")
						}
						s.values = append(s.values, int64(x))
						b = b[n:]
					}
				case f == 3 && w == 2:
					var kv [2]int64
					if err := protoFields(b, func(f, w int, v uint64, _ []byte) error {
						if w == 0 && (f == 1 || f == 2) {
							kv[f-1] = int64(v)
						}
						return nil
					}); err != nil {
						return err
					}
					s.labels = append(s.labels, kv)
				}
				return nil
			})
			samples = append(samples, s)
			return err
		case field == 6 && wire == 2:
			strs = append(strs, string(b))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	str := func(i int64) string {
		if i >= 0 && int(i) < len(strs) {
			return strs[i]
		}
		return ""
	}
	cpu := -1
	for i, t := range types {
		if str(t) == "cpu" {
			cpu = i
		}
	}
	if cpu < 0 {
		return nil, errors.New("profile: no cpu values")
	}
	out := map[string]time.Duration{}
	for _, s := range samples {
		if cpu >= len(s.values) {
			continue
		}
		side := ""
		for _, kv := range s.labels {
			if str(kv[0]) == key {
				side = str(kv[1])
			}
		}
		out[side] += time.Duration(s.values[cpu])
	}
	return out, nil
}

// protoFields calls fn for each field of a protobuf message: varints with
// v, length-delimited fields with b; fixed-width fields are skipped.
func protoFields(b []byte, fn func(field, wire int, v uint64, b []byte) error) error {
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("bad tag")
		}
		b = b[n:]
		field, wire := int(tag>>3), int(tag&7)
		switch wire {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return errors.New("bad varint")
			}
			b = b[n:]
			if err := fn(field, wire, v, nil); err != nil {
				return err
			}
		case 1:
			if len(b) < 8 {
				return errors.New("short fixed64")
			}
			b = b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errors.New("bad length")
			}
			if err := fn(field, wire, 0, b[n:n+int(l)]); err != nil {
				return err
			}
			b = b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return errors.New("short fixed32")
			}
			b = b[4:]
		default:
			return fmt.Errorf("wire type %d", wire)
		}
	}
	return nil
}
