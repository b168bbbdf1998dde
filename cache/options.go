package cache

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// Defaults, as Proxmox Datacenter Manager's task cache has them.
const (
	// DefaultRotation is the archive period: one file per day. Shorter
	// periods make rotation cheaper and files smaller but multiply files.
	DefaultRotation = 24 * time.Hour
	// DefaultRetention is the number of archive files kept: a week of
	// history with daily rotation.
	DefaultRetention = 7
	// DefaultPlainFiles is the number of newest archive files left
	// uncompressed: the ones merges rewrite most often.
	DefaultPlainFiles = 2
	// DefaultJournalMaxBytes is the journal size past which Apply merges it
	// into the archives first. Choosing a value is a trade-off between
	// fewer archive rewrites (larger) and a shorter recovery at Open and a
	// smaller journal on disk (smaller).
	DefaultJournalMaxBytes = 5 << 20
)

// Options configure a Writer. The zero value of each field means its
// default.
type Options struct {
	Dir             string        // cache directory, created with mode 0750; files are 0640
	Rotation        time.Duration // archive period, a whole number of seconds; files are aligned to multiples of it since the Unix epoch
	Retention       int           // archive files kept
	PlainFiles      int           // newest archive files left uncompressed; negative: none
	JournalMaxBytes int64         // Apply merges the journal first when it has grown past this
	// LineArchives makes the Writer write archive files as JSON task
	// lines (the format of Proxmox Datacenter Manager and of taskfleet
	// before the binary format) instead of the binary format; both are
	// read either way. For tools that read the files as PDM does.
	LineArchives bool

	Now    func() time.Time // clock; default time.Now
	Logger zerolog.Logger   // zero value: no logging (zerolog's zero Logger is disabled)

	// Latest is where snapshots are published; nil means a new one. Pass
	// the Latest of a previous Writer of the same directory to keep the
	// readers' handle valid across a writer restart.
	Latest *Latest

	// Faults, when set, injects disk faults into every file operation: for
	// tests of the layers above the cache (see Faults).
	Faults *Faults

	// Test knobs.
	fs    fsys
	hooks *hooks
}

// hooks let tests observe and pause the Writer.
type hooks struct {
	// beforeArchiveWrite is called before each archive file is written
	// by a merge, a rotation or a repair.
	beforeArchiveWrite func(name string)
	// compactMin overrides the interner size below which rotation does
	// not compact the string tables.
	compactMin int
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, errors.New("no cache directory")
	}
	if o.Rotation == 0 {
		o.Rotation = DefaultRotation
	}
	if o.Rotation < time.Second || o.Rotation%time.Second != 0 {
		return o, fmt.Errorf("rotation %v: want a positive whole number of seconds", o.Rotation)
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.Retention < 1 {
		return o, fmt.Errorf("retention %d: want at least 1", o.Retention)
	}
	switch {
	case o.PlainFiles == 0:
		o.PlainFiles = DefaultPlainFiles
	case o.PlainFiles < 0:
		o.PlainFiles = 0
	}
	if o.JournalMaxBytes == 0 {
		o.JournalMaxBytes = DefaultJournalMaxBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Latest == nil {
		o.Latest = &Latest{}
	}
	if o.fs == nil {
		o.fs = osFS{}
	}
	if o.Faults != nil {
		o.fs = faultFS{fsys: o.fs, f: o.Faults}
	}
	return o, nil
}
