package api

import (
	"context"
	"encoding/csv"
	"iter"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

// streamingFake is the fake backend with StreamTasks, which lists through
// Tasks and hands the page out as an iterator.
type streamingFake struct {
	*fakeBackend
	streams int
}

func (b *streamingFake) StreamTasks(_ context.Context, f task.Filter) (int, iter.Seq[task.Task], error) {
	page, err := b.Tasks(context.Background(), f)
	if err != nil {
		return 0, nil, err
	}
	b.streams++
	return page.Total, slices.Values(page.Tasks), nil
}

// TestListStreamedSameAnswer: a backend with StreamTasks and one without
// give the same lists.
func TestListStreamedSameAnswer(t *testing.T) {
	plain := newFake(t)
	streamed := &streamingFake{fakeBackend: newFake(t)}
	hp, hs := New(plain, Options{Tokens: tokens}), New(streamed, Options{Tokens: tokens})
	for _, target := range []string{
		"/api2/json/remotes/tasks/list",
		"/api2/json/remotes/tasks/list?limit=0",
		"/api2/json/remotes/tasks/list?start=2&limit=2",
		"/api2/json/remotes/tasks/list?start=50",
		"/api2/json/remotes/tasks/list?remote=east&errors=1",
	} {
		for _, tok := range []string{adminSecret, eastSecret} {
			a := call{target: target, token: tok}.do(t, hp).wantStatus(t, http.StatusOK)
			b := call{target: target, token: tok}.do(t, hs).wantStatus(t, http.StatusOK)
			if *a.Total != *b.Total || !slices.Equal(a.upids(t), b.upids(t)) || string(a.Data) != string(b.Data) {
				t.Errorf("%s: streamed answer differs:\n%s\nwant\n%s", target, b.raw, a.raw)
			}
			if b.header.Get("X-Total-Count") != strconv.Itoa(*b.Total) {
				t.Errorf("%s: X-Total-Count %q, total %d", target, b.header.Get("X-Total-Count"), *b.Total)
			}
		}
	}
	if streamed.streams == 0 {
		t.Error("StreamTasks never called")
	}
}

// TestListCSV: format=csv and Accept: text/csv give the rows of the JSON
// list, with a header row.
func TestListCSV(t *testing.T) {
	h := New(newFake(t), Options{Tokens: tokens})
	const target = "/api2/json/remotes/tasks/list?limit=0"
	js := call{target: target, token: adminSecret}.do(t, h).wantStatus(t, http.StatusOK)
	var items []TaskListItem
	js.decode(t, &items)
	for _, c := range []struct {
		target string
		accept string
	}{
		{target: target + "&format=csv"},
		{target: target, accept: "text/csv"},
		{target: target, accept: "application/json;q=0.5, text/csv"},
	} {
		req := call{target: c.target, token: adminSecret}
		a := req.doWith(t, h, func(r *http.Request) {
			if c.accept != "" {
				r.Header.Set("Accept", c.accept)
			}
		}).wantStatus(t, http.StatusOK)
		if ct := a.header.Get("Content-Type"); ct != "text/csv; charset=utf-8; header=present" {
			t.Fatalf("%s (Accept %q): Content-Type %q", c.target, c.accept, ct)
		}
		rows, err := csv.NewReader(strings.NewReader(a.raw)).ReadAll()
		if err != nil {
			t.Fatalf("CSV: %v\n%s", err, a.raw)
		}
		if !slices.Equal(rows[0], csvHeader) || len(rows) != len(items)+1 {
			t.Fatalf("CSV header %v and %d rows, want %v and %d", rows[0], len(rows)-1, csvHeader, len(items))
		}
		for i, it := range items {
			if want := csvRow(it); !slices.Equal(rows[i+1], want) {
				t.Errorf("row %d = %q, want %q", i, rows[i+1], want)
			}
		}
		if !strings.Contains(a.raw, "\r\n") || a.header.Get("X-Total-Count") != "6" {
			t.Errorf("want CRLF line ends and X-Total-Count 6: %q", a.header.Get("X-Total-Count"))
		}
	}
	a := call{target: target + "&format=xml", token: adminSecret}.do(t, h).wantStatus(t, http.StatusBadRequest)
	if a.Errors["format"] == "" {
		t.Errorf("format=xml: errors %v", a.Errors)
	}
}

// csvRow is the CSV row of it, built from its JSON form.
func csvRow(it TaskListItem) []string {
	opt := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	end := ""
	if it.EndTime != nil {
		end = strconv.FormatInt(*it.EndTime, 10)
	}
	return []string{it.UPID, it.Node, strconv.FormatInt(it.PID, 10), strconv.FormatUint(it.PStart, 10),
		strconv.FormatInt(it.StartTime, 10), it.WorkerType, opt(it.WorkerID), it.User, end, opt(it.Status)}
}

func TestCSVFormulaGuard(t *testing.T) {
	for in, want := range map[string]string{
		"=cmd|'/c calc'!A1": "'=cmd|'/c calc'!A1", "+1": "'+1", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)",
		"\tx": "'\tx", "root@pam": "root@pam", "": "", "OK": "OK",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPrefersCSV(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                 false,
		"text/csv":                         true,
		"text/csv;q=0":                     false,
		"application/json, text/csv":       true,
		"application/json, text/csv;q=0.5": false,
		"text/html,application/xhtml+xml,*/*;q=0.8": false,
		"*/*":                false,
		"text/*":             false,
		"bogus;;;, text/csv": true,
	} {
		if got := prefersCSV([]string{accept}); got != want {
			t.Errorf("prefersCSV(%q) = %v, want %v", accept, got, want)
		}
	}
}

// TestListHead answers the headers of a list without a body.
func TestListHead(t *testing.T) {
	a := call{method: http.MethodHead, target: "/api2/json/remotes/tasks/list?limit=0"}.do(t, New(newFake(t), Options{})).wantStatus(t, http.StatusOK)
	if a.raw != "" || a.header.Get("X-Total-Count") != "6" {
		t.Errorf("HEAD: body %q, X-Total-Count %q", a.raw, a.header.Get("X-Total-Count"))
	}
}
