package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"strings"

	"github.com/taskfleet/taskfleet/task"
)

// stateMagic starts the first line of the state file:
//
//	taskfleet-cache-state 1 crc32c=0a1b2c3d
//
// followed by the JSON body (stateFile); the checksum covers the body.
const stateMagic = "taskfleet-cache-state 1 crc32c="

// stateFile is the body of the state file: a checkpoint of everything that
// is not in the archive files, as of journal record JournalSeq.
type stateFile struct {
	Rotation   int64                       `json:"rotation"`    // seconds
	Retention  int                         `json:"retention"`   // archive files kept
	Newest     int64                       `json:"newest"`      // start of the newest archive period
	JournalSeq uint64                      `json:"journal_seq"` // last journal record included
	Cutoffs    map[string]map[string]int64 `json:"cutoffs"`     // remote -> node -> cutoff
	Tracked    []string                    `json:"tracked"`     // remote UPIDs
	Active     []json.RawMessage           `json:"active"`      // task lines of the running tasks
}

// encodeState renders the state file.
func (w *Writer) encodeState() ([]byte, error) {
	st := stateFile{
		Rotation:   w.rot,
		Retention:  w.opts.Retention,
		Newest:     w.newest(),
		JournalSeq: w.seq,
		Cutoffs:    w.cutoffs.toMap(),
		Tracked:    []string{},
		Active:     []json.RawMessage{},
	}
	for _, ru := range w.snapshotTracked() {
		st.Tracked = append(st.Tracked, ru.String())
	}
	d := w.in.view()
	seg := w.buildActive()
	for i := range seg.recs {
		line := d.appendLine(nil, &seg.recs[i], seg.raw(i))
		st.Active = append(st.Active, bytes.TrimSuffix(line, []byte{'\n'}))
	}
	body, err := json.MarshalIndent(&st, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	head := fmt.Sprintf("%s%08x\n", stateMagic, crc32.Checksum(body, castagnoli))
	return append([]byte(head), body...), nil
}

// decodeState parses the state file.
func decodeState(data []byte) (*stateFile, error) {
	head, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok || !strings.HasPrefix(string(head), stateMagic) {
		return nil, errors.New("no state header line")
	}
	var sum uint32
	if _, err := fmt.Sscanf(string(head[len(stateMagic):]), "%08x", &sum); err != nil {
		return nil, fmt.Errorf("state header: %w", err)
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errChecksum
	}
	var st stateFile
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("state body: %w", err)
	}
	if st.Rotation <= 0 || st.Retention <= 0 {
		return nil, fmt.Errorf("state: bad rotation %d or retention %d", st.Rotation, st.Retention)
	}
	return &st, nil
}

// loadStateInto applies a decoded state to the Writer's memory: cutoffs,
// tracked tasks and running tasks.
func (w *Writer) loadStateInto(st *stateFile) error {
	for remote, nodes := range st.Cutoffs {
		for node, c := range nodes {
			w.cutoffs.set(remote, node, c)
		}
	}
	for _, s := range st.Tracked {
		ru, err := task.ParseRemoteUPID(s)
		if err != nil {
			return fmt.Errorf("tracked task: %w", err)
		}
		w.applyTrack(ru.Remote, ru.UPID)
	}
	for _, line := range st.Active {
		t, err := parseLine(line)
		if err != nil {
			return fmt.Errorf("running task: %w", err)
		}
		if !t.Running() {
			return fmt.Errorf("running task %s has an end time", t.UPID)
		}
		r, raw := w.in.toRec(&t)
		var u *task.UPID
		if raw {
			u = &t.UPID
		}
		w.addActive(r, u)
	}
	w.seq = st.JournalSeq
	return nil
}

// writeState writes the state file (the checkpoint's commit point).
func (w *Writer) writeState() error {
	data, err := w.encodeState()
	if err != nil {
		return err
	}
	err = writeAtomic(w.fs, filepath.Join(w.dir, StateFile), func(out io.Writer) error {
		_, err := out.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}
