package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/taskfleet/taskfleet/task"
)

// The binary archive format (doc.go, "Archive files"): a magic line, then
// framed blocks of up to archiveBlockTasks tasks. Each block declares the
// strings it uses first (codes continue from the blocks before), then its
// tasks as numbers and codes, start times as differences. About 20 bytes
// per task plain, 8-10 after zstd, against 140 for a JSON line.

// archiveMagic starts an archive file (after decompression) in the binary
// format; a file without it is in the JSON-lines format.
const archiveMagic = "taskfleet-archive 2\n"

// archiveBlockTasks bounds the tasks of one block.
const archiveBlockTasks = 4096

// archiveKinds is the number of string kinds of a block's tables: remotes,
// nodes, types, ids, users, statuses, in that order.
const archiveKinds = 6

// Flags of a task record.
const (
	archFlagPBS  = 1 << iota // a Proxmox Backup Server UPID
	archFlagRaw              // the UPID text follows (not canonical)
	archFlagMask = archFlagPBS | archFlagRaw
)

// maxArchiveBlock bounds a block's payload, against a damaged length.
const maxArchiveBlock = 64 << 20

var errArchive = errors.New("bad archive block")

// archiveEncoder writes the tasks of one archive file.
type archiveEncoder struct {
	d     *dict
	out   io.Writer
	codes [archiveKinds][]int32 // per kind, dict code -> file code + 1 (0: not yet declared)
	next  [archiveKinds]uint32  // per kind, the next file code
	news  [archiveKinds][]string
	body  []byte
	buf   []byte
	n     int   // tasks in the block
	prev  int64 // start time of the previous task in the file
}

func newArchiveEncoder(d *dict, out io.Writer) *archiveEncoder {
	e := &archiveEncoder{d: d, out: out}
	tables := [archiveKinds][]string{d.remotes, d.nodes, d.types, d.ids, d.users, d.statuses}
	for k := range e.codes {
		e.codes[k] = make([]int32, len(tables[k]))
	}
	return e
}

// begin writes the magic line.
func (e *archiveEncoder) begin() error {
	_, err := io.WriteString(e.out, archiveMagic)
	return err
}

// code returns the file code of a dict code, declaring its string in the
// block when it is new.
func (e *archiveEncoder) code(kind int, c uint32, s []string) uint32 {
	if fc := e.codes[kind][c]; fc != 0 {
		return uint32(fc - 1)
	}
	fc := e.next[kind]
	e.next[kind]++
	e.codes[kind][c] = int32(fc + 1)
	e.news[kind] = append(e.news[kind], s[c])
	return fc
}

// add appends a finished task.
func (e *archiveEncoder) add(r *rec, raw *task.UPID) error {
	d := e.d
	flags := byte(0)
	if r.flags&flagPBS != 0 {
		flags |= archFlagPBS
	}
	if raw != nil {
		flags |= archFlagRaw
	}
	b := append(e.body, flags)
	b = binary.AppendVarint(b, r.start-e.prev)
	b = binary.AppendVarint(b, r.end-r.start)
	b = binary.AppendUvarint(b, uint64(e.code(0, r.remote, d.remotes)))
	b = binary.AppendUvarint(b, uint64(e.code(5, r.status, d.statuses)))
	if raw != nil {
		text := raw.String()
		b = binary.AppendUvarint(b, uint64(len(text)))
		b = append(b, text...)
	} else {
		b = binary.AppendUvarint(b, uint64(e.code(1, r.node, d.nodes)))
		b = binary.AppendUvarint(b, uint64(e.code(2, r.typ, d.types)))
		b = binary.AppendUvarint(b, uint64(e.code(3, r.id, d.ids)))
		b = binary.AppendUvarint(b, uint64(e.code(4, r.user, d.users)))
		b = binary.AppendUvarint(b, uint64(r.pid))
		b = binary.AppendUvarint(b, r.pstart)
		if r.flags&flagPBS != 0 {
			b = binary.AppendUvarint(b, r.taskID)
		}
	}
	e.body = b
	e.prev = r.start
	if e.n++; e.n == archiveBlockTasks {
		return e.flush()
	}
	return nil
}

// flush writes the block of the tasks added since the last flush.
func (e *archiveEncoder) flush() error {
	if e.n == 0 {
		return nil
	}
	p := append(e.buf[:0], make([]byte, frameHeaderLen)...)
	p = binary.AppendUvarint(p, uint64(e.n))
	for k := range e.news {
		p = binary.AppendUvarint(p, uint64(len(e.news[k])))
		for _, s := range e.news[k] {
			p = binary.AppendUvarint(p, uint64(len(s)))
			p = append(p, s...)
		}
		e.news[k] = e.news[k][:0]
	}
	p = append(p, e.body...)
	payload := p[frameHeaderLen:]
	binary.LittleEndian.PutUint32(p[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(p[4:8], crc32.Checksum(payload, castagnoli))
	e.buf, e.body, e.n = p, e.body[:0], 0
	_, err := e.out.Write(p)
	return err
}

// isBinaryArchive reports whether content is in the binary format.
func isBinaryArchive(content []byte) bool {
	return bytes.HasPrefix(content, []byte(archiveMagic))
}

// scanBinaryArchive calls fn for every task of a binary archive and
// returns the first damage: a block that is torn, fails its checksum or
// does not decode, or a task that is not a valid finished task. The tasks
// of the blocks before the damage are all passed to fn; nothing after it
// (later blocks use the strings of the damaged one).
func scanBinaryArchive(name string, content []byte, fn func(t *task.Task)) *CorruptionError {
	var tables [archiveKinds][]string
	prev := int64(0)
	var tasks []task.Task
	for off := len(archiveMagic); off < len(content); {
		damage := func(err error) *CorruptionError {
			return &CorruptionError{File: name, Offset: int64(off), Err: err}
		}
		if len(content)-off < frameHeaderLen {
			return damage(fmt.Errorf("%w: torn block header", errArchive))
		}
		n := binary.LittleEndian.Uint32(content[off:])
		sum := binary.LittleEndian.Uint32(content[off+4:])
		if n > maxArchiveBlock || int(n) > len(content)-off-frameHeaderLen {
			return damage(fmt.Errorf("%w: torn block of %d bytes", errArchive, n))
		}
		payload := content[off+frameHeaderLen : off+frameHeaderLen+int(n)]
		if crc32.Checksum(payload, castagnoli) != sum {
			return damage(errChecksum)
		}
		var err error
		tasks, prev, err = decodeArchiveBlock(payload, &tables, prev, tasks[:0])
		if err != nil {
			return damage(err)
		}
		for i := range tasks {
			fn(&tasks[i])
		}
		off += frameHeaderLen + int(n)
	}
	return nil
}

// blockReader reads the fields of a block payload.
type blockReader struct {
	b   []byte
	err error
}

func (r *blockReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("%w: bad number", errArchive)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *blockReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("%w: bad number", errArchive)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *blockReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: string past the end", errArchive)
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *blockReader) code(tables *[archiveKinds][]string, kind int) string {
	c := r.uvarint()
	if r.err == nil && c >= uint64(len(tables[kind])) {
		r.err = fmt.Errorf("%w: undeclared string %d", errArchive, c)
	}
	if r.err != nil {
		return ""
	}
	return tables[kind][c]
}

// decodeArchiveBlock decodes one block payload, adding its strings to
// tables, and appends its tasks to out.
func decodeArchiveBlock(payload []byte, tables *[archiveKinds][]string, prev int64, out []task.Task) ([]task.Task, int64, error) {
	r := blockReader{b: payload}
	n := r.uvarint()
	if r.err == nil && n > uint64(len(payload)) {
		return out, prev, fmt.Errorf("%w: %d tasks in %d bytes", errArchive, n, len(payload))
	}
	for k := range tables {
		m := r.uvarint()
		if r.err == nil && m > uint64(len(r.b)) {
			return out, prev, fmt.Errorf("%w: %d strings in %d bytes", errArchive, m, len(r.b))
		}
		for range m {
			s := string(r.bytes())
			if r.err != nil {
				return out, prev, r.err
			}
			if k == 0 {
				if err := task.ValidateRemoteID(s); err != nil {
					return out, prev, fmt.Errorf("%w: %w", errArchive, err)
				}
			}
			tables[k] = append(tables[k], s)
		}
	}
	for range n {
		var t task.Task
		if len(r.b) == 0 {
			return out, prev, fmt.Errorf("%w: fewer tasks than announced", errArchive)
		}
		flags := r.b[0]
		r.b = r.b[1:]
		if flags&^archFlagMask != 0 {
			return out, prev, fmt.Errorf("%w: unknown flags %#x", errArchive, flags)
		}
		start := prev + r.varint()
		t.EndTime = start + r.varint()
		t.Remote = r.code(tables, 0)
		t.Status = r.code(tables, 5)
		u := &t.UPID
		if flags&archFlagRaw != 0 {
			text := r.bytes()
			if r.err != nil {
				return out, prev, r.err
			}
			p, err := task.ParseUPID(string(text))
			if err != nil {
				return out, prev, fmt.Errorf("%w: %w", errArchive, err)
			}
			if p.StartTime != start || (p.Kind == task.PBS) != (flags&archFlagPBS != 0) {
				return out, prev, fmt.Errorf("%w: upid %s does not match its record", errArchive, text)
			}
			*u = p
		} else {
			u.Kind = task.PVE
			if flags&archFlagPBS != 0 {
				u.Kind = task.PBS
			}
			u.StartTime = start
			u.Node = r.code(tables, 1)
			u.Type = r.code(tables, 2)
			u.ID = r.code(tables, 3)
			u.User = r.code(tables, 4)
			pid := r.uvarint()
			u.PStart = r.uvarint()
			if u.Kind == task.PBS {
				u.TaskID = r.uvarint()
			}
			if r.err == nil && pid > 0xFFFFFFFF {
				r.err = fmt.Errorf("%w: pid %d out of range", errArchive, pid)
			}
			u.PID = uint32(pid)
		}
		if r.err != nil {
			return out, prev, r.err
		}
		if t.EndTime == 0 {
			return out, prev, fmt.Errorf("%w: finished task without end time", errArchive)
		}
		if err := u.Validate(); err != nil {
			return out, prev, fmt.Errorf("%w: %w", errArchive, err)
		}
		out = append(out, t)
		prev = start
	}
	if len(r.b) != 0 {
		return out, prev, fmt.Errorf("%w: %d bytes after the last task", errArchive, len(r.b))
	}
	return out, prev, nil
}
