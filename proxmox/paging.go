package proxmox

import (
	"context"
	"fmt"
	"slices"

	"github.com/taskfleet/taskfleet/task"
)

// staleLimit is the number of consecutive full pages without anything new
// (no new task, no task seen finished) after which FetchTasks concludes that
// the remote ignores start.
const staleLimit = 3

// FetchResult is the outcome of FetchTasks.
type FetchResult struct {
	Tasks    []task.Task // each UPID once, running and finished, in order of first appearance
	Requests int         // list requests made
	Resyncs  int         // pages re-read because the list moved up by more than the overlap
	Skipped  []error     // malformed items, each reported once
	Clock    Clock       // the Date header of the last page
}

// FetchTasks lists every task of node started at or after since (inclusive),
// paging until a page comes back shorter than Config.PageSize.
//
// The remote lists running tasks first, then finished ones by finish order,
// and the list moves while we page: new tasks push everything down, a
// running task that finishes leaves the top part (moving later ones up) and
// reappears further down. Offsets are therefore not trusted: consecutive
// pages overlap by PageSize/10 (at least 1), tasks are de-duplicated by
// UPID (a finished copy replaces a running one), and when a page does not
// contain the tail of the previous one, the list moved up by more than the
// overlap and the previous window is read again. A remote that keeps
// returning full pages without new tasks, or a window of more than
// Config.MaxPages pages, ends the fetch with a *PagingError.
//
// On error the result holds what was fetched so far; it is incomplete and
// must not advance a cursor.
func (c *Client) FetchTasks(ctx context.Context, node string, since int64) (FetchResult, error) {
	var res FetchResult
	node, err := c.nodeName(node)
	if err != nil {
		return res, fmt.Errorf("fetch tasks: %w", err)
	}
	limit := c.cfg.PageSize
	overlap := min(max(1, limit/10), limit-1)
	index := make(map[string]int)
	reported := make(map[uint64]bool)
	var anchors []string // keys of the last overlap items of the previous page
	start, stale, resynced := 0, 0, false
	endpoint := ""
	for {
		if res.Requests >= c.cfg.MaxPages {
			return res, fmt.Errorf("fetch tasks: %w", &PagingError{Remote: c.cfg.Remote, Node: node, Endpoint: endpoint, Pages: res.Requests,
				Reason: fmt.Sprintf("the window needs more than %d pages of %d", c.cfg.MaxPages, limit)})
		}
		page, err := c.ListTasks(ctx, node, ListQuery{Since: since, Start: start, Limit: limit})
		res.Requests++
		if err != nil {
			return res, fmt.Errorf("fetch tasks: %w", err)
		}
		endpoint = page.endpoint
		if !page.Clock.Remote.IsZero() {
			res.Clock = page.Clock
		}
		// The previous page's tail must show up in this page; if it does
		// not, the list moved up past the overlap and tasks may lie in the
		// gap.
		moved := start > 0 && len(anchors) > 0 && !containsAny(page.keys, anchors)
		news := res.merge(index, page.Tasks)
		res.report(reported, page.Skipped)
		if page.Returned < limit {
			return res, nil
		}
		// A page read again after a resync may well bring nothing new; a
		// remote that ignores start brings nothing new page after page.
		switch {
		case news > 0:
			stale = 0
		case !resynced:
			stale++
		}
		if stale >= staleLimit {
			return res, fmt.Errorf("fetch tasks: %w", &PagingError{Remote: c.cfg.Remote, Node: node, Endpoint: endpoint, Pages: res.Requests,
				Reason: fmt.Sprintf("%d full pages in a row brought nothing new (start ignored?)", stale)})
		}
		anchors = append(anchors[:0], page.keys[max(0, len(page.keys)-overlap):]...)
		resynced = moved
		if moved {
			// Read the previous window again: it now holds what moved up.
			res.Resyncs++
			start = max(0, start-(limit-overlap))
			continue
		}
		start += page.Returned - overlap
	}
}

// containsAny reports whether keys has one of anchors.
func containsAny(keys, anchors []string) bool {
	for _, k := range keys {
		if slices.Contains(anchors, k) {
			return true
		}
	}
	return false
}

// report adds the item errors not reported yet (an item in the overlap of
// two pages is seen twice).
func (r *FetchResult) report(reported map[uint64]bool, skipped []error) {
	for _, e := range skipped {
		ie, ok := e.(*ItemError)
		if ok && ie.key != 0 {
			if reported[ie.key] {
				continue
			}
			reported[ie.key] = true
		}
		r.Skipped = append(r.Skipped, e)
	}
}

// merge adds the tasks not seen yet and replaces a running copy by a
// finished one; it returns the number of tasks added or replaced.
func (r *FetchResult) merge(index map[string]int, ts []task.Task) int {
	news := 0
	for _, t := range ts {
		key := t.UPID.String()
		i, ok := index[key]
		switch {
		case !ok:
			index[key] = len(r.Tasks)
			r.Tasks = append(r.Tasks, t)
			news++
		case r.Tasks[i].Running() && !t.Running():
			r.Tasks[i] = t
			news++
		}
	}
	return news
}
