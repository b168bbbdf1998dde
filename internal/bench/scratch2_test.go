package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/cache/synth"
)

func TestScratchSQL(t *testing.T) {
	if os.Getenv("SCRATCH2") == "" {
		t.Skip()
	}
	n := 300_000
	fmt.Sscan(os.Getenv("SCRATCH2"), &n)
	dir := t.TempDir()
	db, err := OpenSQLite(filepath.Join(dir, "x.sqlite"), "FULL")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tasks := synth.Synthetic(n, 1000, 7, 1)
	t0 := time.Now()
	db.SetSynchronous("OFF")
	for len(tasks) > 0 {
		k := min(len(tasks), 100_000)
		if err := db.Insert(tasks[:k]); err != nil {
			t.Fatal(err)
		}
		tasks = tasks[k:]
	}
	t.Logf("insert %v", time.Since(t0))
	t1 := time.Now()
	if err := db.CreateIndexes(); err != nil {
		t.Fatal(err)
	}
	t.Logf("index %v", time.Since(t1))
	since := synth.End.Unix() - 7*86400
	if _, err := db.db.Exec(`CREATE INDEX tasks_stats ON tasks (type, remote, class, starttime)`); err != nil {
		t.Fatal(err)
	}
	db.db.Exec(`ANALYZE`)
	for _, q := range []string{
		`SELECT type, remote, class, count(*) FROM tasks WHERE starttime >= ? AND class IS NOT NULL GROUP BY type, remote, class`,
		`SELECT type, remote, sum(class=0), sum(class=1), sum(class=2), sum(class=3) FROM tasks WHERE starttime >= ? AND class IS NOT NULL GROUP BY type, remote`,
		`SELECT count(*) FROM tasks WHERE class IS NOT NULL AND class <> 0 AND ? > 0`,
		`SELECT count(*) FROM tasks WHERE class IN (1,2) AND ? > 0`,
		`SELECT count(*) FROM tasks WHERE user LIKE '%root%' AND ? > 0`,
		`SELECT type, class, count(*) FROM tasks WHERE starttime >= ? AND endtime IS NOT NULL GROUP BY type, class`,
		`SELECT type, class, count(*) FROM tasks NOT INDEXED WHERE starttime >= ? AND endtime IS NOT NULL GROUP BY type, class`,
		`SELECT type, remote, class, count(*) FROM tasks NOT INDEXED WHERE starttime >= ? AND endtime IS NOT NULL GROUP BY type, remote, class`,
		`SELECT remote, class, count(*) FROM tasks WHERE starttime >= ? AND endtime IS NOT NULL GROUP BY remote, class`,
		`SELECT count(*) FROM tasks WHERE endtime IS NOT NULL AND class <> 0`,
		`SELECT count(*) FROM tasks`,
	} {
		rows, _ := db.db.Query(`EXPLAIN QUERY PLAN `+q, since)
		for rows.Next() {
			var a, b, c int
			var d string
			rows.Scan(&a, &b, &c, &d)
			t.Log("  plan:", d)
		}
		rows.Close()
		for range 2 {
			st := time.Now()
			rows, err := db.db.QueryContext(context.Background(), q, since)
			if err != nil {
				t.Fatal(err)
			}
			k := 0
			for rows.Next() {
				k++
			}
			rows.Close()
			t.Logf("%v rows=%d %s", time.Since(st), k, q)
		}
	}
}
