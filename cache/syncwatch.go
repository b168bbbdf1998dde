package cache

import (
	"io/fs"
	"path/filepath"
	"time"
)

// SlowSyncThreshold is how long an fsync may take before it is logged as
// slow, as etcd logs a "slow fdatasync": a disk that slow delays every
// acknowledged batch.
const SlowSyncThreshold = time.Second

// syncWatch times the fsyncs of the file system below it and reports the
// slow ones to its Writer. It measures with time.Now, not Options.Now: the
// duration is the disk's, whatever clock the cache's periods follow.
type syncWatch struct {
	fsys
	w *Writer
}

func (x syncWatch) Create(name string, perm fs.FileMode) (wfile, error) {
	f, err := x.fsys.Create(name, perm)
	if err != nil {
		return nil, err
	}
	return watchedFile{f, name, x.w}, nil
}

func (x syncWatch) OpenAppend(name string, perm fs.FileMode) (wfile, error) {
	f, err := x.fsys.OpenAppend(name, perm)
	if err != nil {
		return nil, err
	}
	return watchedFile{f, name, x.w}, nil
}

func (x syncWatch) SyncDir(dir string) error {
	start := time.Now()
	err := x.fsys.SyncDir(dir)
	x.w.noteSync(dir, time.Since(start), err)
	return err
}

// watchedFile is a file whose fsyncs are timed.
type watchedFile struct {
	wfile
	name string
	w    *Writer
}

func (x watchedFile) Sync() error {
	start := time.Now()
	err := x.wfile.Sync()
	x.w.noteSync(x.name, time.Since(start), err)
	return err
}

// noteSync counts an fsync of name that took d and returned err, and logs
// it when d is SlowSyncThreshold or more.
func (w *Writer) noteSync(name string, d time.Duration, err error) {
	if err == nil {
		w.stats.Syncs++
	}
	if d < SlowSyncThreshold {
		return
	}
	w.stats.SlowSyncs++
	w.log.Warn().Str("file", filepath.Base(name)).Int64("duration_ms", d.Milliseconds()).
		Int64("threshold_ms", SlowSyncThreshold.Milliseconds()).Msg("slow fdatasync")
}
