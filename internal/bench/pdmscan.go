package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/taskfleet/taskfleet/cache"
	"github.com/taskfleet/taskfleet/task"
)

// PDMScan answers lists and statistics from a cache directory the way
// Proxmox Datacenter Manager answers them from its task cache
// (server/src/remote_tasks: get_tasks): no index and no memory of its own;
// every query opens the files, newest first, streams them line by line
// (the older ones through a zstd decoder), decodes each JSON line into a
// task, parses its UPID, filters it, skips Start matches and stops after
// Limit. A list therefore costs what it decodes: a few lines for the
// newest tasks, every line for a filter that matches little or for a deep
// Start. Statistics decode every line.
//
// It reads taskfleet's on-disk format (cache/doc.go), which keeps PDM's
// task lines and file naming: archive.<start>[.zst] files sorted newest
// first. PDM keeps the running tasks in a file "active"; taskfleet keeps
// them in the state file, which PDMScan reads once per query instead.
// The journal must be merged (empty) before scanning.
//
// Differences from PDM, for the same answer as the other engines: tasks
// are filtered with taskfleet's semantics (task.Filter.Match); running
// tasks are merged into the stream by start time instead of being listed
// first; and, like PDM, a list has no total (Page.Total is -1): counting
// would need the whole scan.
type PDMScan struct {
	dir string
	dec *zstd.Decoder
	br  *bufio.Reader
}

// NewPDMScan returns a scanner of the cache directory dir.
func NewPDMScan(dir string) (*PDMScan, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("pdm scan: %w", err)
	}
	return &PDMScan{dir: dir, dec: dec, br: bufio.NewReaderSize(nil, 64<<10)}, nil
}

// Close releases the decoder.
func (p *PDMScan) Close() { p.dec.Close() }

// archive is one archive file.
type archive struct {
	path       string
	start      int64
	compressed bool
}

// files lists the archive files, newest first, and checks that the
// journal is empty.
func (p *PDMScan) files() ([]archive, error) {
	ents, err := os.ReadDir(p.dir)
	if err != nil {
		return nil, fmt.Errorf("pdm scan: %w", err)
	}
	var out []archive
	for _, e := range ents {
		name := e.Name()
		if name == cache.JournalFile {
			if info, err := e.Info(); err == nil && info.Size() > 0 {
				return nil, fmt.Errorf("pdm scan: journal not merged (%d bytes)", info.Size())
			}
			continue
		}
		rest, ok := strings.CutPrefix(name, cache.ArchivePrefix)
		if !ok {
			continue
		}
		rest, compressed := strings.CutSuffix(rest, cache.CompressedSuffix)
		start, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, archive{path: filepath.Join(p.dir, name), start: start, compressed: compressed})
	}
	slices.SortFunc(out, func(a, b archive) int { return int(b.start - a.start) })
	return out, nil
}

// active reads the running tasks from the state file, sorted newest first.
func (p *PDMScan) active() ([]task.Task, error) {
	data, err := os.ReadFile(filepath.Join(p.dir, cache.StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pdm scan: %w", err)
	}
	_, body, _ := bytes.Cut(data, []byte{'\n'}) // header line
	var st struct {
		Active []json.RawMessage `json:"active"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("pdm scan: state: %w", err)
	}
	out := make([]task.Task, 0, len(st.Active))
	for _, raw := range st.Active {
		t, err := decodeTaskLine(raw)
		if err != nil {
			return nil, fmt.Errorf("pdm scan: state: %w", err)
		}
		out = append(out, t)
	}
	slices.SortFunc(out, task.Compare)
	return out, nil
}

// scan calls fn with every task, newest first, until fn returns false.
// Running tasks come from the state file, finished ones from the archive
// files, decoded line by line.
func (p *PDMScan) scan(running bool, fn func(t *task.Task) bool) error {
	act, err := p.active()
	if err != nil {
		return err
	}
	if running { // PDM: GetTasks::Active reads only the active file
		for i := range act {
			if !fn(&act[i]) {
				return nil
			}
		}
		return nil
	}
	files, err := p.files()
	if err != nil {
		return err
	}
	stop := false
	emit := func(t *task.Task) {
		for len(act) > 0 && task.Compare(act[0], *t) < 0 {
			if !fn(&act[0]) {
				stop = true
				return
			}
			act = act[1:]
		}
		if !fn(t) {
			stop = true
		}
	}
	for _, a := range files {
		if err := p.scanFile(a, emit, &stop); err != nil {
			return err
		}
		if stop {
			return nil
		}
	}
	for i := range act {
		if !fn(&act[i]) {
			return nil
		}
	}
	return nil
}

// scanFile streams one archive file.
func (p *PDMScan) scanFile(a archive, emit func(t *task.Task), stop *bool) error {
	f, err := os.Open(a.path)
	if err != nil {
		return fmt.Errorf("pdm scan: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if a.compressed {
		if err := p.dec.Reset(f); err != nil {
			return fmt.Errorf("pdm scan: %s: %w", a.path, err)
		}
		r = p.dec
	}
	p.br.Reset(r)
	for !*stop {
		line, err := p.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: collect it whole.
			rest, err2 := p.br.ReadBytes('\n')
			line = append(append([]byte(nil), line...), rest...)
			err = err2
		}
		if len(bytes.TrimSpace(line)) > 0 {
			t, derr := decodeTaskLine(line)
			if derr != nil {
				return fmt.Errorf("pdm scan: %s: %w", a.path, derr)
			}
			emit(&t)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pdm scan: %s: %w", a.path, err)
		}
	}
	return nil
}

// Query returns the page of f; Total is -1 (PDM does not count).
func (p *PDMScan) Query(f task.Filter) (task.Page, error) {
	page := task.Page{Total: -1}
	skip := f.Start
	err := p.scan(f.Running, func(t *task.Task) bool {
		if !f.Match(t) {
			return true
		}
		if skip > 0 {
			skip--
			return true
		}
		page.Tasks = append(page.Tasks, *t)
		return f.Limit == 0 || len(page.Tasks) < f.Limit
	})
	return page, err
}

// Statistics decodes every task and counts the finished ones that match f.
func (p *PDMScan) Statistics(f task.Filter) (task.Statistics, error) {
	st := task.Statistics{ByType: map[string]task.Counts{}, ByRemote: map[string]task.Counts{}}
	err := p.scan(false, func(t *task.Task) bool {
		if t.Running() || !f.Match(t) {
			return true
		}
		cl := t.Class()
		c := st.ByType[t.UPID.Type]
		c.Add(cl)
		st.ByType[t.UPID.Type] = c
		c = st.ByRemote[t.Remote]
		c.Add(cl)
		st.ByRemote[t.Remote] = c
		return true
	})
	return st, err
}

// taskLine is a PDM TaskCacheItem.
type taskLine struct {
	UPID      string  `json:"upid"`
	StartTime int64   `json:"starttime"`
	Status    *string `json:"status"`
	EndTime   *int64  `json:"endtime"`
}

// decodeTaskLine decodes one task line (PDM's TaskCacheItem) and parses
// its remote UPID, as PDM does for every task it lists. The common lines
// (keys without escapes, string and integer values) are decoded by hand,
// at about the speed of serde_json; anything else by encoding/json.
func decodeTaskLine(line []byte) (task.Task, error) {
	var it taskLine
	if !fastTaskLine(line, &it) {
		it = taskLine{}
		if err := json.Unmarshal(line, &it); err != nil {
			return task.Task{}, err
		}
	}
	ru, err := task.ParseRemoteUPID(it.UPID)
	if err != nil {
		return task.Task{}, err
	}
	t := task.Task{Remote: ru.Remote, UPID: ru.UPID}
	if it.EndTime != nil {
		t.EndTime = *it.EndTime
		if it.Status != nil {
			t.Status = *it.Status
		}
	}
	return t, nil
}

// fastTaskLine decodes a task line without escapes in its strings; false
// means "use encoding/json".
func fastTaskLine(b []byte, it *taskLine) bool {
	i := 0
	ws := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
	}
	str := func() (string, bool) {
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' || b[j] < 0x20 {
				return "", false
			}
			j++
		}
		if j >= len(b) {
			return "", false
		}
		s := string(b[i+1 : j])
		i = j + 1
		return s, true
	}
	num := func() (int64, bool) {
		j := i
		if j < len(b) && b[j] == '-' {
			j++
		}
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		v, err := strconv.ParseInt(string(b[i:j]), 10, 64)
		if err != nil {
			return 0, false
		}
		i = j
		return v, true
	}
	ws()
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i++
	for {
		ws()
		if i < len(b) && b[i] == '}' {
			i++
			break
		}
		key, ok := str()
		if !ok {
			return false
		}
		ws()
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i++
		ws()
		switch {
		case i+4 <= len(b) && string(b[i:i+4]) == "null":
			i += 4
		case key == "upid":
			if it.UPID, ok = str(); !ok {
				return false
			}
		case key == "status":
			s, ok := str()
			if !ok {
				return false
			}
			it.Status = &s
		case key == "starttime":
			if it.StartTime, ok = num(); !ok {
				return false
			}
		case key == "endtime":
			v, ok := num()
			if !ok {
				return false
			}
			it.EndTime = &v
		default:
			return false // unknown key: let encoding/json skip it
		}
		ws()
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			i++
			break
		}
		return false
	}
	ws()
	return i == len(b)
}
