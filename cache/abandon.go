package cache

// Abandon releases the files without merging the journal or writing
// anything: for an owner that panicked and may have left the Writer's
// memory inconsistent. The next Open recovers from what is on disk, where
// every acknowledged batch is in the journal. The Latest keeps serving the
// last snapshot.
func (w *Writer) Abandon() error {
	if w.closed {
		return nil
	}
	w.closeFiles()
	w.closed = true
	return nil
}
