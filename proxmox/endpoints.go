package proxmox

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/taskfleet/taskfleet/task"
)

const (
	// endpointRetryAfter is how long an endpoint that could not be
	// connected to is tried last rather than first. A dead node costs a
	// full dial timeout per attempt; within a poll that is worth avoiding,
	// and after a minute the node may be back.
	endpointRetryAfter = time.Minute
	// rediscoverAfter is the pause between attempts to learn which node
	// answers on which endpoint when a node is not mapped yet (one
	// /cluster/status request per endpoint).
	rediscoverAfter = 10 * time.Minute
)

// endpointState is what the client learned about one endpoint; guarded by
// Client.mu.
type endpointState struct {
	node    string    // node that said local=1 in /cluster/status; "" unknown
	downAt  time.Time // last failed connection attempt; zero when the last one worked
	lastErr error
}

// EndpointState describes one endpoint for health reports.
type EndpointState struct {
	URL       string    // "https://host:port"
	Node      string    // node answering on it, "" until learned
	DownSince time.Time // last failed connection attempt; zero when the last one worked
	LastError string    // error of that attempt
}

// EndpointStates returns what the client knows about each endpoint, in
// configuration order.
func (c *Client) EndpointStates() []EndpointState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]EndpointState, len(c.eps))
	for i, ep := range c.eps {
		st := c.state[i]
		out[i] = EndpointState{URL: ep.base, Node: st.node, DownSince: st.downAt}
		if st.lastErr != nil {
			out[i].LastError = st.lastErr.Error()
		}
	}
	return out
}

// order returns the endpoints to try for a request about node: the node's
// own endpoints first (no proxy hop), then the one that answered last, then
// the rest in configuration order; endpoints that recently failed to
// connect go last.
func (c *Client) order(node string) []*endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	added := make([]bool, len(c.eps))
	up := make([]*endpoint, 0, len(c.eps))
	var down []*endpoint
	add := func(ep *endpoint) {
		if added[ep.index] {
			return
		}
		added[ep.index] = true
		if at := c.state[ep.index].downAt; !at.IsZero() && now.Sub(at) < endpointRetryAfter {
			down = append(down, ep)
			return
		}
		up = append(up, ep)
	}
	if node != "" {
		for i, ep := range c.eps {
			if c.state[i].node == node {
				add(ep)
			}
		}
	}
	if c.preferred >= 0 {
		add(c.eps[c.preferred])
	}
	for _, ep := range c.eps {
		add(ep)
	}
	return append(up, down...)
}

// reached records that a connection to ep worked (whatever the answer).
// It becomes the preferred endpoint when the preferred one failed.
func (c *Client) reached(ep *endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state[ep.index].downAt = time.Time{}
	c.state[ep.index].lastErr = nil
	if c.preferred < 0 {
		c.preferred = ep.index
	}
}

// failed records that ep could not be connected to.
func (c *Client) failed(ep *endpoint, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state[ep.index].downAt = time.Now()
	c.state[ep.index].lastErr = err
	if c.preferred == ep.index {
		c.preferred = -1
	}
}

// clusterStatusItem is one entry of GET /cluster/status.
type clusterStatusItem struct {
	Type  string   `json:"type"`
	Name  string   `json:"name"`
	Local flexBool `json:"local"`
}

// Discover asks every endpoint of a PVE remote which node answers on it
// (GET /cluster/status, the node entry with local=1) and remembers the
// mapping, so requests about a node go to that node directly instead of
// being proxied. It returns the mapping learned, node name to endpoint URL,
// and the errors of endpoints that did not say. The client also calls it
// by itself the first time a node it cannot map is asked for. For a PBS
// remote it does nothing: PBS is one node, "localhost".
//
// The token needs Sys.Audit on / for /cluster/status; without it the
// client works as before, through any endpoint.
func (c *Client) Discover(ctx context.Context) (map[string]string, error) {
	if c.cfg.Kind != task.PVE {
		return map[string]string{}, nil
	}
	names := make([]string, len(c.eps))
	errs := make([]error, len(c.eps))
	var wg sync.WaitGroup
	for i, ep := range c.eps {
		wg.Go(func() {
			names[i], errs[i] = c.localNode(ctx, ep)
		})
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string)
	for i, name := range names {
		if errs[i] != nil {
			continue
		}
		c.state[i].node = name
		if _, ok := out[name]; !ok {
			out[name] = c.eps[i].base
		}
	}
	return out, errors.Join(errs...)
}

// localNode asks ep which node it is.
func (c *Client) localNode(ctx context.Context, ep *endpoint) (string, error) {
	var name string
	err := c.get(ctx, call{path: "/api2/json/cluster/status", only: ep}, func(b *body, _ string) error {
		dec := b.json()
		var items []clusterStatusItem
		if _, err := decodeData(dec, &items); err != nil {
			return err
		}
		for _, it := range items {
			if it.Type == "node" && bool(it.Local) && it.Name != "" {
				name = it.Name
				return nil
			}
		}
		return &shapeError{reason: "no node entry with local=1", offset: -1}
	})
	return name, err
}

// learnNode makes sure the client tried to map node to its endpoint: when
// the remote is a PVE cluster with several endpoints and node is not
// mapped, it runs (or joins) a discovery, at most once per rediscoverAfter.
// Failures are not returned: requests then go through any endpoint.
func (c *Client) learnNode(ctx context.Context, node string) {
	if c.cfg.Kind != task.PVE || len(c.eps) < 2 || node == "" {
		return
	}
	c.mu.Lock()
	for _, st := range c.state {
		if st.node == node {
			c.mu.Unlock()
			return
		}
	}
	due := c.lastTry.IsZero() || time.Since(c.lastTry) >= rediscoverAfter
	if !due && !c.discovering {
		c.mu.Unlock()
		return
	}
	if due && !c.discovering {
		c.lastTry = time.Now()
		c.discovering = true
	}
	c.mu.Unlock()
	ch := c.discovery.DoChan("discover", func() (any, error) {
		_, err := c.Discover(ctx)
		c.mu.Lock()
		c.discovering = false
		if ctx.Err() != nil {
			c.lastTry = time.Time{} // canceled, not failed: try again next time
		}
		c.mu.Unlock()
		return nil, err
	})
	select {
	case <-ch:
	case <-ctx.Done():
	}
}
