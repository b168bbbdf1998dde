package proxmox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/taskfleet/taskfleet/task"
)

// pbsNode is the node name PBS answers under.
const pbsNode = "localhost"

// ListQuery selects one page of a node's task list.
type ListQuery struct {
	Source  string // PVE: "all" (default), "active" or "archive"; ignored for PBS
	Since   int64  // only tasks started at or after this Unix time (inclusive); 0: no bound
	Until   int64  // only tasks started at or before this Unix time; 0: no bound
	Start   int    // skip this many tasks
	Limit   int    // at most this many; 0: Config.PageSize (never "unlimited")
	Running bool   // only running tasks (PBS running=1; PVE: source=active when Source is "")
}

// ListPage is one page of a task list as the remote returned it.
type ListPage struct {
	Tasks    []task.Task // in the remote's order, malformed items left out
	Returned int         // items the remote returned, the skipped ones included
	// Total is the remote's "total" attribute, -1 when absent. PVE counts
	// all matching tasks; PBS only says "there may be more" (returned +
	// start, plus one when the page was full). Don't page by it.
	Total   int
	Skipped []error // one *ItemError per item left out
	Clock   Clock   // the answer's Date header

	keys     []string // in page order, per task its UPID, per reported skipped item "#" and a hash
	endpoint string   // URL that answered
}

// ListTasks fetches one raw page of a node's tasks: for PVE
// GET /nodes/{node}/tasks with source=all, for PBS
// GET /nodes/localhost/tasks (node "" means "localhost"). A limit is
// always sent: PVE returns nothing for limit=0 and 50 when none is given.
// Tasks carry Remote = Config.Remote; running ones have EndTime 0 and
// Status "".
func (c *Client) ListTasks(ctx context.Context, node string, q ListQuery) (ListPage, error) {
	node, err := c.nodeName(node)
	if err != nil {
		return ListPage{}, fmt.Errorf("list tasks: %w", err)
	}
	query, err := c.listQuery(q)
	if err != nil {
		return ListPage{}, fmt.Errorf("list tasks: %s: %w", location(c.cfg.Remote, node, ""), err)
	}
	c.learnNode(ctx, node)
	var clock Clock
	cl := call{node: node, path: "/api2/json/nodes/" + url.PathEscape(node) + "/tasks", query: query, clock: &clock}
	var page ListPage
	err = c.get(ctx, cl, func(in *body, target string) error {
		b := c.newPageBuilder(node, target)
		total, err := decodeList(in.tokens(), b.add)
		page = b.finish(total)
		return err
	})
	if err != nil {
		return ListPage{}, fmt.Errorf("list tasks: %w", err)
	}
	page.Clock = clock
	return page, nil
}

// nodeName checks the node argument; PBS answers as "localhost".
func (c *Client) nodeName(node string) (string, error) {
	if c.cfg.Kind == task.PBS && node == "" {
		return pbsNode, nil
	}
	if node == "" {
		return "", fmt.Errorf("%s: empty node name", location(c.cfg.Remote, "", ""))
	}
	return node, nil
}

// listQuery builds the query string of a list request.
func (c *Client) listQuery(q ListQuery) (url.Values, error) {
	if q.Start < 0 || q.Limit < 0 {
		return nil, fmt.Errorf("start %d, limit %d: must not be negative", q.Start, q.Limit)
	}
	v := url.Values{}
	limit := q.Limit
	if limit == 0 {
		limit = c.cfg.PageSize
	}
	v.Set("limit", strconv.Itoa(limit))
	if q.Start > 0 {
		v.Set("start", strconv.Itoa(q.Start))
	}
	if q.Since > 0 {
		v.Set("since", strconv.FormatInt(q.Since, 10))
	}
	if q.Until > 0 {
		v.Set("until", strconv.FormatInt(q.Until, 10))
	}
	if c.cfg.Kind == task.PBS {
		if q.Running {
			v.Set("running", "1")
		}
		return v, nil
	}
	src := q.Source
	switch {
	case src == "" && q.Running:
		src = "active"
	case src == "":
		src = "all"
	case src != "all" && src != "active" && src != "archive":
		return nil, fmt.Errorf("source %q: want all, active or archive", src)
	}
	v.Set("source", src)
	return v, nil
}

// listItem holds the fields of a task-list item that the client uses. The
// identity (node, type, id, user, start) comes from the UPID, the source of
// truth: list items differ between products (type/id vs worker_type/
// worker_id), PBS says node "localhost", and PVE splits token users into
// user and tokenid once a task is archived.
type listItem struct {
	UPID, Status       string
	hasUPID, hasStatus bool // present and not null
	StartTime, EndTime flexInt
}

// maxSkipped bounds the item errors kept per page, so that a body of a
// million malformed items costs a counter, not a million errors.
const maxSkipped = 100

// pageBuilder collects the tasks of a page as the items are decoded.
type pageBuilder struct {
	c        *Client
	node     string
	endpoint string
	item     bytes.Reader      // the item parseItem reads
	dec      *jsontext.Decoder // over item, reset for each
	page     ListPage
	omitted  int // skipped items beyond maxSkipped
	firstOm  int // index of the first of them
}

func (c *Client) newPageBuilder(node, endpoint string) *pageBuilder {
	b := &pageBuilder{c: c, node: node, endpoint: endpoint}
	b.dec = jsontext.NewDecoder(&b.item, textOptions...)
	return b
}

// add parses the next item, keeping it as a task or reporting it.
func (b *pageBuilder) add(raw []byte) {
	i := b.page.Returned
	b.page.Returned++
	b.item.Reset(raw)
	b.dec.Reset(&b.item, textOptions...)
	t, upid, err := b.c.parseItem(b.dec)
	if err == nil {
		b.page.Tasks = append(b.page.Tasks, t)
		b.page.keys = append(b.page.keys, upid)
		return
	}
	if len(b.page.Skipped) >= maxSkipped {
		if b.omitted == 0 {
			b.firstOm = i
		}
		b.omitted++
		return
	}
	h := fnv.New64a()
	_, _ = h.Write(raw)
	key := h.Sum64()
	b.page.keys = append(b.page.keys, "#"+strconv.FormatUint(key, 16))
	b.page.Skipped = append(b.page.Skipped, &ItemError{
		Remote: b.c.cfg.Remote, Node: b.node, Endpoint: b.endpoint, Index: i, UPID: upid, Err: err, key: key,
	})
}

// finish returns the page; more than maxSkipped malformed items end with
// one error that counts the rest.
func (b *pageBuilder) finish(total int) ListPage {
	if b.omitted > 0 {
		b.page.Skipped = append(b.page.Skipped, &ItemError{
			Remote: b.c.cfg.Remote, Node: b.node, Endpoint: b.endpoint, Index: b.firstOm,
			Err: fmt.Errorf("%d more malformed items skipped from here on", b.omitted),
		})
	}
	b.page.Total = total
	b.page.endpoint = b.endpoint
	return b.page
}

// parseItem turns one item, read from dec, into a task; upid is the
// item's upid text when it had one, for the error.
func (c *Client) parseItem(dec *jsontext.Decoder) (t task.Task, upid string, err error) {
	var it listItem
	err = readObject(dec, "task item", func(name []byte) error {
		var str *string
		var has *bool
		var num *flexInt
		switch string(name) {
		case "upid":
			str, has = &it.UPID, &it.hasUPID
		case "status":
			str, has = &it.Status, &it.hasStatus
		case "starttime":
			num = &it.StartTime
		case "endtime":
			num = &it.EndTime
		default:
			return dec.SkipValue()
		}
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		if num != nil {
			if err := num.UnmarshalJSON(v); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		}
		s, ok := jsonString(v)
		if !ok {
			return fmt.Errorf("%s: got JSON %s, want string", name, kindName(v))
		}
		if string(v) != "null" {
			*str, *has = s, true
		}
		return nil
	})
	upid = it.UPID
	if err != nil {
		return task.Task{}, upid, err
	}
	if !it.hasUPID {
		return task.Task{}, "", errors.New("no upid")
	}
	var u task.UPID
	if c.cfg.Kind == task.PBS {
		u, err = task.ParsePBS(upid)
	} else {
		u, err = task.ParsePVE(upid)
	}
	if err != nil {
		return task.Task{}, upid, err
	}
	if !it.StartTime.ok {
		return task.Task{}, upid, errors.New("no starttime")
	}
	if it.StartTime.v != u.StartTime {
		return task.Task{}, upid, fmt.Errorf("starttime %d differs from the upid's %d", it.StartTime.v, u.StartTime)
	}
	t = task.Task{Remote: c.cfg.Remote, UPID: u}
	if it.EndTime.ok && it.EndTime.v > 0 {
		t.EndTime = it.EndTime.v
		t.Status = it.Status
	}
	return t, upid, nil
}

// ClusterTasks returns the recent tasks of all nodes of a PVE cluster (GET
// /cluster/tasks): each node's running tasks topped up with recently
// finished ones, 25 per node, in one request. It is a cheap "did anything
// change?" probe before listing each node. Malformed items are left out;
// ClusterTasksPage reports them. A PBS remote has no such endpoint.
func (c *Client) ClusterTasks(ctx context.Context) ([]task.Task, error) {
	page, err := c.ClusterTasksPage(ctx)
	return page.Tasks, err
}

// ClusterTasksPage is ClusterTasks with the skipped items reported.
func (c *Client) ClusterTasksPage(ctx context.Context) (ListPage, error) {
	if c.cfg.Kind != task.PVE {
		return ListPage{}, fmt.Errorf("cluster tasks: %s: not a PVE remote: %w", location(c.cfg.Remote, "", ""), errors.ErrUnsupported)
	}
	if c.ClusterTasksRefused() {
		return ListPage{}, fmt.Errorf("cluster tasks: %s: %w", location(c.cfg.Remote, "", ""), ErrClusterTasksRefused)
	}
	var clock Clock
	cl := call{path: "/api2/json/cluster/tasks", clock: &clock}
	var page ListPage
	err := c.get(ctx, cl, func(in *body, target string) error {
		b := c.newPageBuilder("", target)
		_, err := decodeList(in.tokens(), b.add)
		page = b.finish(-1)
		return err
	})
	if err != nil {
		if refusesClusterTasks(err) {
			c.refusedClusterTasks()
		}
		return ListPage{}, fmt.Errorf("cluster tasks: %w", err)
	}
	c.clusterRefused.Store(0)
	page.Clock = clock
	return page, nil
}
