package cache

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/taskfleet/taskfleet/task"
)

// Journal records are framed so that a torn or damaged record is detected:
//
//	record  = length:uint32le crc:uint32le payload[length]
//	crc     = CRC-32C (Castagnoli) of payload
//	payload = header-line "\n" { task-line "\n" }
//
// See doc.go for the header fields of each operation.
const (
	frameHeaderLen = 8
	maxRecordLen   = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Journal operations.
const (
	opApply   = "apply"   // a Batch: tasks and node results
	opTrack   = "track"   // Track(remote, upid)
	opUntrack = "untrack" // Untrack(remote, upid)
	opDrop    = "drop"    // DropRemote(remote)
	opLower   = "lower"   // lower every cutoff to at most Before (archive damage)
	opReset   = "reset"   // cap cutoffs to Cutoffs, drop the others (journal or state damage)
)

// recordHeader is the first line of a journal record.
type recordHeader struct {
	Seq     uint64                      `json:"seq"`
	Op      string                      `json:"op"`
	Remote  string                      `json:"remote,omitempty"`
	UPID    string                      `json:"upid,omitempty"`
	Nodes   []nodeJSON                  `json:"nodes,omitempty"`
	Tasks   int                         `json:"tasks,omitempty"`
	Before  int64                       `json:"before,omitempty"`
	Cutoffs map[string]map[string]int64 `json:"cutoffs,omitempty"`
}

type nodeJSON struct {
	Node string `json:"node"`
	OK   bool   `json:"ok"`
}

// record is a decoded journal record.
type record struct {
	recordHeader
	tasks  []task.Task // opApply
	offset int64       // of its frame in the journal
}

// frame appends a framed record with header h and the task lines in lines.
func frame(dst []byte, h *recordHeader, lines []byte) ([]byte, error) {
	dst, start, err := beginFrame(dst, h)
	if err != nil {
		return nil, err
	}
	return endFrame(append(dst, lines...), start)
}

// beginFrame appends the frame header placeholder and the header line of a
// record; the caller appends the task lines and calls endFrame with start.
func beginFrame(dst []byte, h *recordHeader) (out []byte, start int, err error) {
	head, err := json.Marshal(h)
	if err != nil {
		return nil, 0, fmt.Errorf("encode journal record: %w", err)
	}
	start = len(dst)
	dst = append(dst, make([]byte, frameHeaderLen)...)
	dst = append(dst, head...)
	return append(dst, '\n'), start, nil
}

// endFrame fills in the length and checksum of the record at start.
func endFrame(dst []byte, start int) ([]byte, error) {
	payload := dst[start+frameHeaderLen:]
	if len(payload) > maxRecordLen {
		return nil, fmt.Errorf("encode journal record: %d bytes, limit %d", len(payload), maxRecordLen)
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst, nil
}

// readRecords decodes the records of a journal. It returns the good records,
// the length of the good prefix and, when the rest is damaged, the
// corruption (a torn last record, a checksum mismatch, an undecodable record
// or a sequence number that does not increase).
func readRecords(data []byte) (recs []record, good int64, ce *CorruptionError) {
	off := 0
	var last uint64
	fail := func(err error) ([]record, int64, *CorruptionError) {
		return recs, int64(off), &CorruptionError{File: JournalFile, Offset: int64(off), Err: err}
	}
	for off < len(data) {
		rest := data[off:]
		if len(rest) < frameHeaderLen {
			return fail(errTornTail)
		}
		n := binary.LittleEndian.Uint32(rest)
		sum := binary.LittleEndian.Uint32(rest[4:])
		if n > maxRecordLen {
			return fail(fmt.Errorf("record length %d over limit", n))
		}
		if int64(len(rest)-frameHeaderLen) < int64(n) {
			return fail(errTornTail)
		}
		payload := rest[frameHeaderLen : frameHeaderLen+int(n)]
		if crc32.Checksum(payload, castagnoli) != sum {
			return fail(errChecksum)
		}
		r, err := decodeRecord(payload)
		if err != nil {
			return fail(err)
		}
		if r.Seq <= last {
			return fail(fmt.Errorf("sequence number %d after %d", r.Seq, last))
		}
		last = r.Seq
		r.offset = int64(off)
		recs = append(recs, r)
		off += frameHeaderLen + int(n)
	}
	return recs, int64(off), nil
}

func decodeRecord(payload []byte) (record, error) {
	var r record
	head, lines, ok := bytes.Cut(payload, []byte{'\n'})
	if !ok {
		return r, errors.New("record without header line")
	}
	if err := json.Unmarshal(head, &r.recordHeader); err != nil {
		return r, fmt.Errorf("record header: %w", err)
	}
	switch r.Op {
	case opApply:
		r.tasks = make([]task.Task, 0, r.Tasks)
		if ce := scanLines(JournalFile, lines, false, func(t *task.Task) { r.tasks = append(r.tasks, *t) }); ce != nil {
			return r, ce.Err
		}
		if len(r.tasks) != r.Tasks {
			return r, fmt.Errorf("record has %d task lines, header says %d", len(r.tasks), r.Tasks)
		}
	case opTrack, opUntrack, opDrop, opLower, opReset:
		if len(lines) != 0 {
			return r, fmt.Errorf("%s record with task lines", r.Op)
		}
	default:
		return r, fmt.Errorf("unknown record operation %q", r.Op)
	}
	return r, nil
}

// appendJournal appends one framed record to the journal and fsyncs it; the
// change it describes is durable when it returns nil. When the write fails
// it cuts the journal back to its previous length, so that a later record
// does not follow a torn one, and the Writer stays usable; when that or the
// fsync fails, the Writer is unusable.
func (w *Writer) appendJournal(data []byte) error {
	if _, err := w.journal.Write(data); err != nil {
		return w.rollbackJournal(fmt.Errorf("append journal: %w", err))
	}
	if err := w.journal.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the data:
		// nothing written since the last good sync can be trusted.
		return w.fail(fmt.Errorf("sync journal: %w", err))
	}
	w.jsize += int64(len(data))
	w.jrecords++
	return nil
}

func (w *Writer) rollbackJournal(cause error) error {
	if err := w.journal.Truncate(w.jsize); err != nil {
		return w.fail(cause)
	}
	if err := w.journal.Sync(); err != nil {
		return w.fail(cause)
	}
	return cause
}

// truncateJournal empties the journal after a checkpoint.
func (w *Writer) truncateJournal() error {
	if w.jsize == 0 {
		return nil
	}
	if err := w.journal.Truncate(0); err != nil {
		return fmt.Errorf("truncate journal: %w", err)
	}
	if err := w.journal.Sync(); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	w.jsize, w.jrecords = 0, 0
	return nil
}
