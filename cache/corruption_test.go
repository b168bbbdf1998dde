package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/taskfleet/taskfleet/task"
)

// corruptionSetup fills a cache with tasks in every period (two plain and
// two compressed files), merges them, and then applies two more batches
// that stay in the journal. It returns the tasks of the merged part and of
// each journal batch. With lines, the archive files are written as JSON
// lines (the format before the binary one, still read).
func corruptionSetup(t *testing.T, dir string, clock *fakeClock, lines bool) (merged []task.Task, journal [2]Batch) {
	t.Helper()
	w := openTest(t, dir, clock, func(o *Options) { o.LineArchives = lines })
	nodes := []NodeResult{{Node: "n1", OK: true}, {Node: "n2", OK: true}}
	for p := range int64(4) {
		b := Batch{Remote: "east", Nodes: nodes}
		for i := range int64(5) {
			start := t0 + p*3600 + 100 + i*10
			b.Tasks = append(b.Tasks, pveTask("east", []string{"n1", "n2"}[i%2], uint32(p*10+i), start, "vzdump", "101", "root@pam", start+5, "OK"))
		}
		pb := Batch{Remote: "bak", Nodes: []NodeResult{{Node: pbsNodeKey, OK: true}}, Tasks: []task.Task{
			pbsTask("bak", "backup1", uint32(p+1), t0+p*3600+200, "backup", "store1:vm/101", "root@pam", t0+p*3600+300, "OK"),
		}}
		for _, x := range []Batch{b, pb} {
			if err := w.Apply(x); err != nil {
				t.Fatal(err)
			}
			merged = append(merged, x.Tasks...)
		}
	}
	if err := w.ApplyJournal(); err != nil {
		t.Fatal(err)
	}
	for i := range journal {
		start := t0 + 3*3600 + 1000 + int64(i)*100
		journal[i] = Batch{Remote: "east", Nodes: nodes, Tasks: []task.Task{
			pveTask("east", "n1", uint32(900+i), start, "qmstart", "102", "alice@pve", start+1, "OK"),
		}}
		if err := w.Apply(journal[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Abandon(); err != nil { // as after a crash: the journal is not merged
		t.Fatal(err)
	}
	return merged, journal
}

func readZst(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out, err := dec.DecodeAll(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeZst(t *testing.T, name string, content []byte) {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if err := os.WriteFile(name, enc.EncodeAll(content, nil), 0o640); err != nil {
		t.Fatal(err)
	}
}

func rewrite(t *testing.T, name string, edit func([]byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, edit(data), 0o640); err != nil {
		t.Fatal(err)
	}
}

// nthLine returns the offset of line n (0-based) of content.
func nthLine(content []byte, n int) int {
	off := 0
	for range n {
		off += bytes.IndexByte(content[off:], '\n') + 1
	}
	return off
}

// TestCorruption damages one file in each of the ways a disk or an editor
// can, reopens the cache, and checks that the damage is reported, a copy is
// kept, the good records are kept, the cutoffs go back far enough for the
// next fetch to re-request what was lost, the repair does not repeat, and
// the re-requested tasks come back.
func TestCorruption(t *testing.T) {
	plainPeriod, zstPeriod := int64(t0+2*3600), int64(t0+3600)
	plain := archiveName(plainPeriod, false)
	zst := archiveName(zstPeriod, true)
	tests := []struct {
		name string
		// damage changes the files and returns the file the damage is in
		// and its offset (-1: not checked).
		damage func(t *testing.T, dir string) (file string, offset int64)
		// lowerTo is the highest cutoff allowed afterwards: a period start
		// for archives, 0 for "the cutoffs of the last checkpoint".
		lowerTo  int64
		noCopy   bool // no .broken copy (missing file)
		lostJrnl int  // journal batches lost
		noCuts   bool // every cutoff dropped
		lines    bool // archive files written as JSON lines (the old format)
	}{
		{
			name: "truncated_line",
			damage: func(t *testing.T, dir string) (string, int64) {
				var off int
				rewrite(t, filepath.Join(dir, plain), func(b []byte) []byte {
					off = nthLine(b, bytes.Count(b, []byte{'\n'})-1)
					return b[:len(b)-7]
				})
				return plain, int64(off)
			},
			lowerTo: plainPeriod,
			lines:   true,
		},
		{
			name: "garbage_line",
			damage: func(t *testing.T, dir string) (string, int64) {
				var off int
				rewrite(t, filepath.Join(dir, plain), func(b []byte) []byte {
					off = nthLine(b, 2)
					return slices.Concat(b[:off], []byte("{\"upid\": garbage\x00}\n"), b[off:])
				})
				return plain, int64(off)
			},
			lowerTo: plainPeriod,
			lines:   true,
		},
		{
			name: "running_task_in_archive",
			damage: func(t *testing.T, dir string) (string, int64) {
				var off int
				rewrite(t, filepath.Join(dir, plain), func(b []byte) []byte {
					off = nthLine(b, 1)
					line := appendTaskLine(nil, &task.Task{Remote: "east", UPID: pveTask("east", "n1", 77, plainPeriod+9, "qmstart", "1", "root@pam", 0, "").UPID})
					return slices.Concat(b[:off], line, b[off:])
				})
				return plain, int64(off)
			},
			lowerTo: plainPeriod,
			lines:   true,
		},
		{
			name: "garbage_line_in_zst",
			damage: func(t *testing.T, dir string) (string, int64) {
				name := filepath.Join(dir, zst)
				b := readZst(t, name)
				off := nthLine(b, 1)
				writeZst(t, name, slices.Concat(b[:off], []byte("not json\n"), b[off:]))
				return zst, int64(off)
			},
			lowerTo: zstPeriod,
			lines:   true,
		},
		{
			name: "binary_torn_block",
			damage: func(t *testing.T, dir string) (string, int64) {
				rewrite(t, filepath.Join(dir, plain), func(b []byte) []byte { return b[:len(b)-7] })
				return plain, int64(len(archiveMagic))
			},
			lowerTo: plainPeriod,
		},
		{
			name: "binary_checksum_mismatch",
			damage: func(t *testing.T, dir string) (string, int64) {
				rewrite(t, filepath.Join(dir, plain), func(b []byte) []byte {
					b[len(archiveMagic)+frameHeaderLen+5] ^= 0x20
					return b
				})
				return plain, int64(len(archiveMagic))
			},
			lowerTo: plainPeriod,
		},
		{
			name: "binary_undecodable_block",
			damage: func(t *testing.T, dir string) (string, int64) {
				rewrite(t, filepath.Join(dir, plain), func(b []byte) []byte {
					off := len(archiveMagic)
					payload := slices.Clone(b[off+frameHeaderLen:])
					return reframeBlock(b[:off], append(payload, 0x7f)) // a byte after the last task
				})
				return plain, int64(len(archiveMagic))
			},
			lowerTo: plainPeriod,
		},
		{
			name: "binary_running_task",
			damage: func(t *testing.T, dir string) (string, int64) {
				rewrite(t, filepath.Join(dir, plain), func(b []byte) []byte {
					var tasks []task.Task
					if ce := scanBinaryArchive(plain, b, func(tk *task.Task) { tasks = append(tasks, *tk) }); ce != nil {
						t.Fatal(ce)
					}
					run := pveTask("east", "n1", 77, plainPeriod+9, "qmstart", "1", "root@pam", 0, "")
					return encodeArchive(t, slices.Insert(tasks, 1, run))
				})
				return plain, int64(len(archiveMagic))
			},
			lowerTo: plainPeriod,
		},
		{
			name: "binary_bad_block_in_zst",
			damage: func(t *testing.T, dir string) (string, int64) {
				name := filepath.Join(dir, zst)
				b := readZst(t, name)
				b[len(b)-2] ^= 0x01
				writeZst(t, name, b)
				return zst, int64(len(archiveMagic))
			},
			lowerTo: zstPeriod,
		},
		{
			name: "truncated_zstd",
			damage: func(t *testing.T, dir string) (string, int64) {
				rewrite(t, filepath.Join(dir, zst), func(b []byte) []byte { return b[:len(b)/2] })
				return zst, -1
			},
			lowerTo: zstPeriod,
		},
		{
			name: "deleted_plain_file",
			damage: func(t *testing.T, dir string) (string, int64) {
				if err := os.Remove(filepath.Join(dir, plain)); err != nil {
					t.Fatal(err)
				}
				return plain, 0
			},
			lowerTo: plainPeriod,
			noCopy:  true,
		},
		{
			name: "deleted_zst_file",
			damage: func(t *testing.T, dir string) (string, int64) {
				if err := os.Remove(filepath.Join(dir, zst)); err != nil {
					t.Fatal(err)
				}
				return zst, 0
			},
			lowerTo: zstPeriod,
			noCopy:  true,
		},
		{
			name: "torn_journal_tail",
			damage: func(t *testing.T, dir string) (string, int64) {
				var off int64
				rewrite(t, filepath.Join(dir, JournalFile), func(b []byte) []byte {
					recs, _, _ := readRecords(b)
					off = recs[len(recs)-1].offset
					return b[:len(b)-5]
				})
				return JournalFile, off
			},
			lostJrnl: 1,
		},
		{
			name: "journal_checksum_mismatch",
			damage: func(t *testing.T, dir string) (string, int64) {
				rewrite(t, filepath.Join(dir, JournalFile), func(b []byte) []byte {
					b[frameHeaderLen+3] ^= 0x20
					return b
				})
				return JournalFile, 0
			},
			lostJrnl: 2,
		},
		{
			name: "corrupt_state",
			damage: func(t *testing.T, dir string) (string, int64) {
				rewrite(t, filepath.Join(dir, StateFile), func(b []byte) []byte {
					return bytes.Replace(b, []byte(`"cutoffs"`), []byte(`"cutoffz"`), 1)
				})
				return StateFile, 0
			},
			noCuts: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			clock := newClock(t0 + 3*3600 + 1800)
			merged, journal := corruptionSetup(t, dir, clock, tc.lines)
			wantFile, wantOff := tc.damage(t, dir)

			w := openTest(t, dir, clock)
			cs := w.Corruptions()
			if len(cs) != 1 {
				t.Fatalf("Corruptions() = %v, want one", cs)
			}
			ce := cs[0]
			if !errors.Is(ce, ErrCorrupt) || ce.File != wantFile || (wantOff >= 0 && ce.Offset != wantOff) {
				t.Fatalf("corruption = %#v (%v), want file %s offset %d", ce, ce, wantFile, wantOff)
			}
			if _, err := os.Stat(filepath.Join(dir, wantFile+BrokenSuffix)); (err == nil) == tc.noCopy {
				t.Fatalf("copy %s%s: %v, want one: %v", wantFile, BrokenSuffix, err, !tc.noCopy)
			}

			// The good records are kept.
			s := w.Latest().Load()
			have := map[string]bool{}
			for _, tk := range all(s) {
				have[ident(tk)] = true
			}
			missing := 0
			for _, tk := range merged {
				if !have[ident(tk)] {
					missing++
					p, _ := w.periodOf(tk.UPID.StartTime)
					if tc.lowerTo == 0 || p != tc.lowerTo {
						t.Fatalf("task %s of an intact file lost", ident(tk))
					}
				}
			}
			for i, b := range journal {
				if have[ident(b.Tasks[0])] != (i < len(journal)-tc.lostJrnl) {
					t.Fatalf("journal batch %d present = %v, want lost = %v", i, have[ident(b.Tasks[0])], i >= len(journal)-tc.lostJrnl)
				}
			}

			// The cutoffs go back far enough to re-request what was lost.
			for _, remote := range []string{"east", "bak"} {
				nodes := s.Nodes(remote)
				if tc.noCuts && len(nodes) > 0 {
					t.Fatalf("state lost but %s has cutoffs for %v", remote, nodes)
				}
				for _, n := range nodes {
					c, _ := s.Cutoff(remote, n)
					limit := tc.lowerTo
					if tc.lowerTo == 0 { // the last checkpoint: the newest merged task of the node
						limit = t0 + 3*3600 + 200
					}
					if c > limit {
						t.Fatalf("cutoff %s/%s = %d, want at most %d", remote, n, c, limit)
					}
				}
			}

			// The next fetch re-requests the lost range and the tasks come back.
			lost := map[string][]task.Task{}
			for _, tk := range append(merged, journal[0].Tasks[0], journal[1].Tasks[0]) {
				if !have[ident(tk)] {
					lost[tk.Remote] = append(lost[tk.Remote], tk)
				}
			}
			for remote, tasks := range lost {
				if err := w.Apply(Batch{Remote: remote, Tasks: tasks, Nodes: []NodeResult{{Node: "n1", OK: true}}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			// Repaired once: reopening finds nothing and holds everything.
			w = openTest(t, dir, clock)
			defer w.Close()
			if cs := w.Corruptions(); len(cs) != 0 {
				t.Fatalf("after repair, Corruptions() = %v", cs)
			}
			want := len(merged) + len(journal)
			if got := w.Latest().Load().Len(); got != want {
				t.Fatalf("after re-requesting, %d tasks, want %d", got, want)
			}
		})
	}
}

// reframeBlock appends payload to head as one archive block, with its
// length and checksum.
func reframeBlock(head, payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(slices.Clone(head), uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(payload, castagnoli))
	return append(b, payload...)
}

// encodeArchive returns tasks (finished or not) in the binary archive
// format, in the order given.
func encodeArchive(t *testing.T, tasks []task.Task) []byte {
	t.Helper()
	in := newInterner()
	recs := make([]rec, len(tasks))
	raws := make([]*task.UPID, len(tasks))
	for i := range tasks {
		var raw bool
		if recs[i], raw = in.toRec(&tasks[i]); raw {
			raws[i] = &tasks[i].UPID
		}
	}
	var buf bytes.Buffer
	e := newArchiveEncoder(in.view(), &buf)
	if err := e.begin(); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := e.add(&recs[i], raws[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCorruptionErrorUnwrap checks the typed error.
func TestCorruptionErrorUnwrap(t *testing.T) {
	ce := &CorruptionError{File: "journal", Offset: 42, Err: errTornTail}
	var err error = ce
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, errTornTail) {
		t.Fatalf("errors.Is(%v): want ErrCorrupt and the cause", err)
	}
	var got *CorruptionError
	if !errors.As(err, &got) || got.Offset != 42 {
		t.Fatalf("errors.As(%v) = %v", err, got)
	}
	if want := "corrupt cache file journal at offset 42: torn record at end of journal"; err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}
}
