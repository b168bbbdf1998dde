package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUTime returns the user and system CPU time the process has used so far
// (getrusage(RUSAGE_SELF)): every goroutine of the process, including a
// simulator running in it.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RSS returns the resident set size of the process (VmRSS in
// /proc/self/status), or 0 where that file does not exist.
func RSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// settledHeap runs the garbage collector twice and returns the bytes of
// live heap objects (runtime.MemStats.HeapAlloc).
func settledHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// settledRSS collects garbage, returns freed memory to the operating
// system and then reads the resident set size, so that RSS reflects live
// memory rather than what the collector has not given back yet.
func settledRSS() int64 {
	runtime.GC()
	debug.FreeOSMemory()
	return RSS()
}

// Machine describes where a run happened.
type Machine struct {
	CPU        string  `json:"cpu"`         // model name from /proc/cpuinfo
	CPUs       int     `json:"cpus"`        // runtime.NumCPU, as nproc reports
	GOMAXPROCS int     `json:"gomaxprocs"`  // Go's scheduler threads
	GoVersion  string  `json:"go_version"`  // runtime.Version
	OS         string  `json:"os"`          // GOOS/GOARCH
	MemTotal   int64   `json:"mem_total"`   // bytes, from /proc/meminfo
	LoadBefore float64 `json:"load_before"` // 1-minute load average when the run started
	LoadAfter  float64 `json:"load_after"`  // 1-minute load average when it ended
	Start      string  `json:"start"`       // RFC 3339
	Duration   float64 `json:"duration_s"`  // seconds the run took
}

// machineInfo reads what can be known about the machine.
func machineInfo() Machine {
	m := Machine{
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		LoadBefore: LoadAverage(),
		Start:      time.Now().UTC().Format(time.RFC3339),
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range bytes.Lines(data) {
			if rest, ok := bytes.CutPrefix(line, []byte("MemTotal:")); ok {
				if f := strings.Fields(string(rest)); len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					m.MemTotal = kb << 10
				}
			}
		}
	}
	return m
}

// LoadAverage returns the 1-minute load average (/proc/loadavg), or -1.
func LoadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// dirSize returns the total size of the regular files in dir.
func dirSize(dir string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n
}
