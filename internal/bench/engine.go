package bench

import (
	"context"
	"errors"

	"github.com/taskfleet/taskfleet/task"
)

// sqlEngine is the SQLite comparison engine of the queries and ingest
// sections (*SQLite). It exists only in a binary built with the sqlite
// build tag, so that the taskfleet command neither compiles nor links
// modernc.org/sqlite:
//
//	go run -tags sqlite ./cmd/taskfleet bench --only queries,ingest
//
// Without the tag those sections measure the cache and the PDM-style scan
// only and say that SQLite was left out.
type sqlEngine interface {
	Insert(tasks []task.Task) error
	Query(ctx context.Context, f task.Filter) (task.Page, error)
	Statistics(ctx context.Context, f task.Filter) (task.Statistics, error)
	Close() error
}

// loadSQLite creates a database at path holding tasks (loadSQLiteDB); nil
// without the sqlite build tag.
var loadSQLite func(path, synchronous string, tasks []task.Task) (sqlEngine, error)

// ErrNoSQLite is returned where the SQLite comparison is asked for in a
// binary built without it.
var ErrNoSQLite = errors.New("SQLite comparison not built in: build with -tags sqlite (go run -tags sqlite ./cmd/taskfleet bench)")

// SQLiteBuiltIn reports whether this binary holds the SQLite comparison.
func SQLiteBuiltIn() bool { return loadSQLite != nil }
