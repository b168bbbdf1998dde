package cache

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/taskfleet/taskfleet/task"
)

// File names in the cache directory; see doc.go for their content.
const (
	// ArchivePrefix starts the name of an archive file, followed by the
	// Unix time its period starts at: "archive.1700006400", compressed
	// "archive.1700006400.zst".
	ArchivePrefix = "archive."
	// CompressedSuffix ends the name of a zstd-compressed archive file.
	CompressedSuffix = ".zst"
	// JournalFile is the write-ahead journal of changes since the last
	// checkpoint.
	JournalFile = "journal"
	// StateFile is the checkpoint of cutoffs, tracked and running tasks.
	StateFile = "state"
	// TmpSuffix ends a file being written; Open removes leftovers.
	TmpSuffix = ".tmp"
	// BrokenSuffix ends the copy of a corrupt file kept as evidence when the
	// file is repaired.
	BrokenSuffix = ".broken"
)

// archiveName returns the file name of a period's archive.
func archiveName(period int64, compressed bool) string {
	name := ArchivePrefix + strconv.FormatInt(period, 10)
	if compressed {
		name += CompressedSuffix
	}
	return name
}

// parseArchiveName parses an archive file name.
func parseArchiveName(name string) (period int64, compressed, ok bool) {
	rest, ok := strings.CutPrefix(name, ArchivePrefix)
	if !ok {
		return 0, false, false
	}
	rest, compressed = strings.CutSuffix(rest, CompressedSuffix)
	period, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || strconv.FormatInt(period, 10) != rest {
		return 0, false, false
	}
	return period, compressed, true
}

// diskForm says in which forms a period's archive exists on disk.
type diskForm uint8

const (
	formPlain diskForm = 1 << iota
	formZst
)

func formOf(compressed bool) diskForm {
	if compressed {
		return formZst
	}
	return formPlain
}

// decompress returns the content of a zstd stream. On damage it returns what
// could be decoded before it and the error.
func (w *Writer) decompress(data []byte) ([]byte, error) {
	if len(data) == 0 {
		return nil, nil
	}
	dec, err := w.decoder()
	if err != nil {
		return nil, err
	}
	if err := dec.Reset(bytes.NewReader(data)); err != nil {
		return nil, err
	}
	return io.ReadAll(dec)
}

// scanLines calls fn for every task line of content and returns the first
// damage: a line that does not parse or is not a finished task (in archives),
// or a last line without newline. Damaged lines are skipped; the good ones
// are all passed to fn. Archive content (finished) in the binary format is
// read by scanBinaryArchive.
func scanLines(name string, content []byte, finished bool, fn func(t *task.Task)) *CorruptionError {
	if finished && isBinaryArchive(content) {
		return scanBinaryArchive(name, content, fn)
	}
	var first *CorruptionError
	note := func(off int, err error) {
		if first == nil {
			first = &CorruptionError{File: name, Offset: int64(off), Err: err}
		}
	}
	for off := 0; off < len(content); {
		end := bytes.IndexByte(content[off:], '\n')
		if end < 0 {
			note(off, errNoNewline)
			break
		}
		line := content[off : off+end]
		lineOff := off
		off += end + 1
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		t, err := parseLine(line)
		if err == nil && finished && t.Running() {
			err = fmt.Errorf("%w: finished task without end time", errLine)
		}
		if err != nil {
			note(lineOff, err)
			continue
		}
		fn(&t)
	}
	return first
}

// writeArchive writes a period's archive file from memory, in the form its
// age requires, and removes the file of the other form.
func (w *Writer) writeArchive(period int64) error {
	compressed := w.compressed(period)
	name := archiveName(period, compressed)
	if w.hooks != nil && w.hooks.beforeArchiveWrite != nil {
		w.hooks.beforeArchiveWrite(name)
	}
	seg := w.base[period]
	d := w.in.view()
	var enc *zstd.Encoder
	if compressed {
		var err error
		if enc, err = w.encoder(); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
	}
	err := writeAtomic(w.fs, filepath.Join(w.dir, name), func(out io.Writer) error {
		dst := out
		if compressed {
			enc.Reset(out)
			dst = enc
		}
		if w.opts.LineArchives {
			if err := writeLines(d, seg, dst); err != nil {
				return err
			}
		} else {
			bw := bufio.NewWriterSize(dst, 64<<10)
			e := newArchiveEncoder(d, bw)
			if err := e.begin(); err != nil {
				return err
			}
			for i := range seg.recs {
				if err := e.add(&seg.recs[i], seg.raw(i)); err != nil {
					return err
				}
			}
			if err := e.flush(); err != nil {
				return err
			}
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		if compressed {
			return enc.Close()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	other := formOf(!compressed)
	if w.disk[period]&other != 0 {
		if err := removeFiles(w.fs, w.dir, archiveName(period, !compressed)); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
	}
	w.disk[period] = formOf(compressed)
	return nil
}

// writeLines writes the tasks of seg as JSON lines.
func writeLines(d *dict, seg *segment, dst io.Writer) error {
	buf := make([]byte, 0, 80<<10)
	for i := range seg.recs {
		buf = d.appendLine(buf, &seg.recs[i], seg.raw(i))
		if len(buf) >= 64<<10 {
			if _, err := dst.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	_, err := dst.Write(buf)
	return err
}

// compressed reports whether a kept period's archive is stored compressed:
// all but the newest PlainFiles are.
func (w *Writer) compressed(period int64) bool {
	age := int((w.newest() - period) / w.rot)
	return age >= w.opts.PlainFiles
}

// zstdWindow is the compression window. Task lines repeat within a few
// kilobytes, so a small window compresses about as well as the default
// 8 MiB and keeps the decoder's buffers small.
const zstdWindow = 1 << 20

// Encoders and decoders are large (window and hash tables): a Writer
// creates one when it first compresses or decompresses and releases it at
// Close. Both run synchronously (concurrency 1), so the cache starts no
// goroutines. They are not pooled between Writers: a zstd coder holds
// channels, and one made inside a testing/synctest bubble must not be
// used outside it (the actors' tests run Writers in bubbles, one after
// the other); a Writer lives as long as its daemon, so a pool saved little.
func (w *Writer) encoder() (*zstd.Encoder, error) {
	if w.enc == nil {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithWindowSize(zstdWindow))
		if err != nil {
			return nil, fmt.Errorf("create zstd encoder: %w", err)
		}
		w.enc = enc
	}
	return w.enc, nil
}

func (w *Writer) decoder() (*zstd.Decoder, error) {
	if w.dec == nil {
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("create zstd decoder: %w", err)
		}
		w.dec = dec
	}
	return w.dec, nil
}

// releaseZstd releases the encoder and decoder.
func (w *Writer) releaseZstd() {
	if w.enc != nil {
		w.enc.Close()
		w.enc = nil
	}
	if w.dec != nil {
		w.dec.Close()
		w.dec = nil
	}
}
