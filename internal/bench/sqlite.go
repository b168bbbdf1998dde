//go:build sqlite

package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/taskfleet/taskfleet/task"
)

// SQLite is the engine a competent user would pick instead of taskfleet's
// cache: one table of tasks in SQLite (modernc.org/sqlite, pure Go) with
// indexes on start time, remote and type and a partial index on the
// running tasks, in WAL mode, with prepared statements. Lists return the
// same page and total as the cache (ORDER BY start time descending, UPID
// and remote ascending; a COUNT(*) with the same WHERE for the total), so
// the two do the same work for the same answer.
//
// Pragmas: journal_mode=WAL; synchronous as given (FULL makes every
// committed transaction durable, like the cache's fsync'd journal; NORMAL
// in WAL mode does not fsync on commit); cache_size=-262144 (256 MiB page
// cache, enough for the whole table and its indexes); temp_store=MEMORY;
// mmap_size=1 GiB. One connection serves all statements, which the
// benchmark runs one at a time.
type SQLite struct {
	db    *sql.DB
	stmts map[string]*sql.Stmt // by SQL text
}

// sqliteSchema is the table. Status classes are stored as a column (0 ok,
// 1 warning, 2 error, 3 unknown; NULL exactly while the task runs) so that
// errors, statusfilter and statistics need no string matching.
var sqliteSchema = []string{
	`CREATE TABLE IF NOT EXISTS tasks (
		remote    TEXT NOT NULL,
		upid      TEXT NOT NULL,
		node      TEXT NOT NULL,
		type      TEXT NOT NULL,
		user      TEXT NOT NULL,
		starttime INTEGER NOT NULL,
		endtime   INTEGER,
		status    TEXT,
		class     INTEGER
	)`,
}

// sqliteIndexes are what a competent user indexes: the task's identity
// (for the upsert), start time (the list order, and every since/until
// window), remote (lists of one remote, in list order), type (leading a
// covering index with remote, class and start time, so that statistics
// and the status counts read that index in group order instead of the
// table), and the running tasks (the list PDM's UI asks for most).
var sqliteIndexes = []string{
	`CREATE UNIQUE INDEX IF NOT EXISTS tasks_id ON tasks (remote, upid)`,
	`CREATE INDEX IF NOT EXISTS tasks_start ON tasks (starttime DESC, upid, remote)`,
	`CREATE INDEX IF NOT EXISTS tasks_remote ON tasks (remote, starttime DESC, upid)`,
	`CREATE INDEX IF NOT EXISTS tasks_type ON tasks (type, remote, class, starttime)`,
	`CREATE INDEX IF NOT EXISTS tasks_running ON tasks (starttime DESC, upid, remote) WHERE class IS NULL`,
}

// sqliteInsert adds tasks during the bulk load, before the indexes exist.
const sqliteInsert = `INSERT INTO tasks (remote, upid, node, type, user, starttime, endtime, status, class)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// sqliteUpsert adds a task once; a running copy is replaced by a finished
// one, as the cache does.
const sqliteUpsert = sqliteInsert + `
	ON CONFLICT (remote, upid) DO UPDATE SET endtime = excluded.endtime, status = excluded.status, class = excluded.class
	WHERE tasks.class IS NULL AND excluded.class IS NOT NULL`

// OpenSQLite opens (creating) the database at path with the given
// synchronous mode ("FULL" or "NORMAL").
func OpenSQLite(path, synchronous string) (*SQLite, error) {
	switch synchronous {
	case "FULL", "NORMAL", "OFF":
	default:
		return nil, fmt.Errorf("open sqlite: synchronous %q: want FULL, NORMAL or OFF", synchronous)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(" + synchronous + ")" +
		"&_pragma=cache_size(-262144)&_pragma=temp_store(MEMORY)&_pragma=mmap_size(1073741824)&_pragma=busy_timeout(5000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	for _, q := range sqliteSchema {
		if _, err := db.Exec(q); err != nil {
			db.Close()
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
	}
	return &SQLite{db: db, stmts: map[string]*sql.Stmt{}}, nil
}

// Close closes the database.
func (s *SQLite) Close() error {
	for _, st := range s.stmts {
		st.Close()
	}
	return s.db.Close()
}

// CreateIndexes creates the indexes and gathers statistics for the query
// planner (ANALYZE). Loading first (BulkLoad) and indexing after is faster.
func (s *SQLite) CreateIndexes() error {
	for _, q := range sqliteIndexes {
		if _, err := s.db.Exec(q); err != nil {
			return fmt.Errorf("create index: %w", err)
		}
	}
	if _, err := s.db.Exec(`ANALYZE`); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return nil
}

// SetSynchronous switches the synchronous pragma (e.g. OFF for a bulk load
// that is not measured, FULL afterwards).
func (s *SQLite) SetSynchronous(mode string) error {
	_, err := s.db.Exec(`PRAGMA synchronous = ` + mode)
	return err
}

// SetJournalMode switches the journal mode (OFF for a bulk load, WAL
// afterwards).
func (s *SQLite) SetJournalMode(mode string) error {
	var got string
	if err := s.db.QueryRow(`PRAGMA journal_mode = ` + mode).Scan(&got); err != nil {
		return fmt.Errorf("journal_mode %s: %w", mode, err)
	}
	if !strings.EqualFold(got, mode) {
		return fmt.Errorf("journal_mode %s: still %s", mode, got)
	}
	return nil
}

func (s *SQLite) stmt(q string) (*sql.Stmt, error) {
	if st, ok := s.stmts[q]; ok {
		return st, nil
	}
	st, err := s.db.Prepare(q)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", q, err)
	}
	s.stmts[q] = st
	return st, nil
}

// Insert adds or updates tasks in one transaction (one commit: with
// synchronous=FULL, one fsync of the WAL). The indexes must exist.
func (s *SQLite) Insert(tasks []task.Task) error { return s.insert(sqliteUpsert, tasks) }

// BulkLoad adds new tasks in one transaction, before CreateIndexes.
func (s *SQLite) BulkLoad(tasks []task.Task) error { return s.insert(sqliteInsert, tasks) }

func (s *SQLite) insert(q string, tasks []task.Task) error {
	ins, err := s.stmt(q)
	if err != nil {
		return err
	}
	tx, err := s.db.Begin()
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	st := tx.Stmt(ins)
	for i := range tasks {
		t := &tasks[i]
		var end, status, class any
		if !t.Running() {
			end, status, class = t.EndTime, t.Status, int(t.Class())
		}
		if _, err := st.Exec(t.Remote, t.UPID.String(), t.UPID.Node, t.UPID.Type, t.UPID.User,
			t.UPID.StartTime, end, status, class); err != nil {
			tx.Rollback()
			return fmt.Errorf("insert: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// where builds the WHERE clause of f (Start and Limit aside).
func sqliteWhere(f *task.Filter) (string, []any, error) {
	if f.Scope != nil {
		return "", nil, errors.New("sqlite engine: scoped filters are not supported")
	}
	var conds []string
	var args []any
	add := func(c string, a ...any) {
		conds = append(conds, c)
		args = append(args, a...)
	}
	if f.Remote != "" {
		add("remote = ?", f.Remote)
	}
	if f.Node != "" {
		add("node = ?", f.Node)
	}
	if f.Since != 0 {
		add("starttime >= ?", f.Since)
	}
	if f.Until != 0 {
		add("starttime <= ?", f.Until)
	}
	if f.Running {
		add("class IS NULL")
	}
	if f.Errors {
		add("class IS NOT NULL AND class <> 0")
	}
	if !f.StatusFilter.Empty() {
		var in []string
		for c := task.StatusOK; c <= task.StatusUnknown; c++ {
			if f.StatusFilter.Has(c) {
				in = append(in, fmt.Sprint(int(c)))
			}
		}
		add("class IN (" + strings.Join(in, ",") + ")")
	}
	if f.TypeFilter != "" {
		add("instr(type, ?) > 0", f.TypeFilter) // case-sensitive, as task.Filter
	}
	if f.UserFilter != "" {
		add(`user LIKE ? ESCAPE '\'`, "%"+likeEscape(f.UserFilter)+"%") // ASCII case-insensitive
	}
	if len(conds) == 0 {
		return "", nil, nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args, nil
}

func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// Query returns the page and the total of f, like cache.Snapshot.Query.
func (s *SQLite) Query(ctx context.Context, f task.Filter) (task.Page, error) {
	where, args, err := sqliteWhere(&f)
	if err != nil {
		return task.Page{}, err
	}
	var page task.Page
	list, err := s.stmt(`SELECT remote, upid, endtime, status FROM tasks` + where +
		` ORDER BY starttime DESC, upid, remote LIMIT ? OFFSET ?`)
	if err != nil {
		return page, err
	}
	limit := f.Limit
	if limit == 0 {
		limit = -1 // no limit
	}
	rows, err := list.QueryContext(ctx, append(args, limit, f.Start)...)
	if err != nil {
		return page, fmt.Errorf("list: %w", err)
	}
	for rows.Next() {
		var remote, upid string
		var end sql.NullInt64
		var status sql.NullString
		if err := rows.Scan(&remote, &upid, &end, &status); err != nil {
			rows.Close()
			return page, fmt.Errorf("list: %w", err)
		}
		u, err := task.ParseUPID(upid)
		if err != nil {
			rows.Close()
			return page, fmt.Errorf("list: %w", err)
		}
		page.Tasks = append(page.Tasks, task.Task{Remote: remote, UPID: u, EndTime: end.Int64, Status: status.String})
	}
	if err := rows.Close(); err != nil {
		return page, err
	}
	if err := rows.Err(); err != nil {
		return page, fmt.Errorf("list: %w", err)
	}
	count, err := s.stmt(`SELECT count(*) FROM tasks` + where)
	if err != nil {
		return page, err
	}
	if err := count.QueryRowContext(ctx, args...).Scan(&page.Total); err != nil {
		return page, fmt.Errorf("count: %w", err)
	}
	return page, nil
}

// Statistics counts finished tasks by type and by remote within f's
// since/until (and its other conditions), like cache.Snapshot.Statistics:
// one pass over the covering type index, grouped by type, remote and
// class, summed up by type and by remote.
func (s *SQLite) Statistics(ctx context.Context, f task.Filter) (task.Statistics, error) {
	f.Start, f.Limit = 0, 0
	where, args, err := sqliteWhere(&f)
	if err != nil {
		return task.Statistics{}, err
	}
	if where == "" {
		where = " WHERE class IS NOT NULL"
	} else {
		where += " AND class IS NOT NULL"
	}
	st := task.Statistics{ByType: map[string]task.Counts{}, ByRemote: map[string]task.Counts{}}
	q, err := s.stmt(`SELECT type, remote, class, count(*) FROM tasks` + where + ` GROUP BY type, remote, class`)
	if err != nil {
		return st, err
	}
	rows, err := q.QueryContext(ctx, args...)
	if err != nil {
		return st, fmt.Errorf("statistics: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ, remote string
		var class, n int
		if err := rows.Scan(&typ, &remote, &class, &n); err != nil {
			return st, fmt.Errorf("statistics: %w", err)
		}
		for _, g := range []struct {
			m   map[string]task.Counts
			key string
		}{{st.ByType, typ}, {st.ByRemote, remote}} {
			c := g.m[g.key]
			switch task.StatusClass(class) {
			case task.StatusOK:
				c.OK += n
			case task.StatusWarning:
				c.Warning += n
			case task.StatusError:
				c.Error += n
			default:
				c.Unknown += n
			}
			g.m[g.key] = c
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("statistics: %w", err)
	}
	return st, nil
}

// Len returns the number of rows.
func (s *SQLite) Len(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM tasks`).Scan(&n)
	return n, err
}

func init() { loadSQLite = loadSQLiteDB }

// loadSQLiteDB loads tasks into a new SQLite database at path:
// transactions of 100,000 tasks, then the indexes. The load is set-up,
// not a measurement: no journal and no syncs while loading and indexing
// (twice as fast), WAL and the requested synchronous mode afterwards.
func loadSQLiteDB(path, synchronous string, tasks []task.Task) (sqlEngine, error) {
	db, err := OpenSQLite(path, synchronous)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (sqlEngine, error) {
		db.Close()
		return nil, err
	}
	if err := db.SetSynchronous("OFF"); err != nil {
		return fail(err)
	}
	if err := db.SetJournalMode("OFF"); err != nil {
		return fail(err)
	}
	for len(tasks) > 0 {
		n := min(len(tasks), 100_000)
		if err := db.BulkLoad(tasks[:n]); err != nil {
			return fail(err)
		}
		tasks = tasks[n:]
	}
	if err := db.CreateIndexes(); err != nil {
		return fail(err)
	}
	if err := db.SetJournalMode("WAL"); err != nil {
		return fail(err)
	}
	if err := db.SetSynchronous(synchronous); err != nil {
		return fail(err)
	}
	return db, nil
}
