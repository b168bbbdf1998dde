package api

import (
	"context"
	"math"
	"net/http"

	"github.com/taskfleet/taskfleet/task"
)

// filter reads PDM's TaskFilters plus remote and node, the parameters of
// list and statistics, and limits the filter to the caller's remotes.
func (s *server) filter(ctx context.Context, p *params, c *caller) (task.Filter, error) {
	f := task.NewFilter()
	f.Start = toInt(p.integer("start", 0, 0))
	f.Limit = toInt(p.integer("limit", task.DefaultLimit, 0))
	f.Errors = p.boolean("errors")
	f.Running = p.boolean("running")
	f.UserFilter = p.str("userfilter")
	f.TypeFilter = p.str("typefilter")
	f.Since = p.integer("since", 0, math.MinInt64)
	f.Until = p.integer("until", 0, math.MinInt64)
	for _, v := range p.list("statusfilter") {
		class, ok := task.ParseStatusClass(v)
		if !ok {
			p.fail("statusfilter", "value '%s' does not have a value in the enumeration 'ok, warning, error, unknown'", clip(v))
			continue
		}
		f.StatusFilter = f.StatusFilter.Add(class)
	}
	f.Remote = p.str("remote")
	if f.Remote != "" {
		if err := task.ValidateRemoteID(f.Remote); err != nil {
			p.fail("remote", "%v", err)
		}
	}
	f.Node = p.str("node")
	if f.Node != "" && !validNode(f.Node) {
		p.fail("node", "invalid node name '%s': want letters, digits and inner '-'", clip(f.Node))
	}
	if err := p.done(); err != nil {
		return f, err
	}
	if f.Remote != "" {
		if err := s.checkRemote(ctx, c, f.Remote); err != nil {
			return f, err
		}
	}
	f.Scope = c.scope
	return f, nil
}

// checkRemote answers 403 for a remote outside the caller's scope (whether
// it exists or not, so a scoped token learns nothing about other remotes)
// and 404 for a remote that is not configured.
func (s *server) checkRemote(ctx context.Context, c *caller, remote string) *apiError {
	if !c.allows(remote) {
		return c.forbidden(remote)
	}
	if !s.b.HasRemote(ctx, remote) {
		return unknownRemote(remote)
	}
	return nil
}

func unknownRemote(remote string) *apiError {
	return errorf(http.StatusNotFound, "no such remote '%s'", clip(remote))
}

// validNode checks a node name as a UPID's node field: letters, digits and
// inner dashes.
func validNode(node string) bool {
	if node == "" || len(node) > 255 {
		return false
	}
	for i := 0; i < len(node); i++ {
		c := node[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(node)-1) {
			return false
		}
	}
	return true
}
