package cache

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
)

// ErrCorrupt matches every *CorruptionError with errors.Is.
var ErrCorrupt = errors.New("cache file corrupt")

// CorruptionError describes damage found in a cache file: a line that is
// not a task line, a truncated zstd stream, a torn or mismatching journal
// record, a missing archive file or an unreadable state file. The cache
// repairs what it finds (see doc.go, "Corruption"), so these errors are
// reported through Writer.Corruptions and the log, not returned by Open.
type CorruptionError struct {
	File   string // base name of the file, e.g. "archive.1700006400.zst"
	Offset int64  // byte offset of the first bad record (in the decompressed stream for .zst files)
	Err    error  // what is wrong
}

// Error describes the damage and where it is.
func (e *CorruptionError) Error() string {
	return fmt.Sprintf("corrupt cache file %s at offset %d: %v", e.File, e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *CorruptionError) Unwrap() error { return e.Err }

// Is reports whether target is ErrCorrupt.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

// Causes of corruption.
var (
	errMissing   = errors.New("file missing")
	errTornTail  = errors.New("torn record at end of journal")
	errChecksum  = errors.New("record checksum mismatch")
	errNoNewline = errors.New("last line has no newline")
)

// maxCorruptions bounds the list Writer.Corruptions returns.
const maxCorruptions = 32

// noteCorruption records and logs corruption found in a file.
func (w *Writer) noteCorruption(ce *CorruptionError) {
	w.stats.Corruptions++
	if len(w.corruptions) == maxCorruptions {
		w.corruptions = w.corruptions[1:]
	}
	w.corruptions = append(w.corruptions, ce)
	w.log.Error().Str("file", ce.File).Int64("offset", ce.Offset).Err(ce.Err).Msg("cache file corrupt, repairing")
}

// keepEvidence copies the damaged content of a file to name+BrokenSuffix
// before the file is repaired. An older copy is replaced.
func (w *Writer) keepEvidence(name string, content []byte) error {
	if content == nil {
		return nil
	}
	err := writeAtomic(w.fs, filepath.Join(w.dir, name+BrokenSuffix), func(wr io.Writer) error {
		_, err := wr.Write(content)
		return err
	})
	if err != nil {
		return fmt.Errorf("keep copy of corrupt %s: %w", name, err)
	}
	return nil
}
