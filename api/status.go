package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// status serves GET /api2/json/remotes/status: the health of the remotes
// the caller may see, sorted by id.
func (s *server) status(r *http.Request, c *caller, p *params) (reply, error) {
	if err := p.done(); err != nil {
		return reply{}, err
	}
	all := s.b.Remotes(r.Context())
	out := make([]RemoteStatus, 0, len(all))
	for _, st := range all {
		if !c.allows(st.Remote) {
			continue
		}
		if st.Nodes == nil {
			st.Nodes = []string{}
		}
		if st.Tracked == nil {
			st.Tracked = []string{}
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b RemoteStatus) int { return strings.Compare(a.Remote, b.Remote) })
	return reply{data: out}, nil
}

// reload serves POST /api2/json/reload. It changes every remote, so a
// token limited to some remotes may not call it.
func (s *server) reload(r *http.Request, c *caller, p *params) (reply, error) {
	if err := p.done(); err != nil {
		return reply{}, err
	}
	if c.scoped() {
		return reply{}, errorf(http.StatusForbidden, "permission check failed: token %q is limited to some remotes; reload needs a token for all remotes", c.token)
	}
	err := s.b.Reload(r.Context())
	switch {
	case errors.Is(err, ErrConfigRejected):
		return reply{}, errorf(http.StatusUnprocessableEntity, "reload rejected, the running configuration stays: %v", err)
	case err != nil:
		return reply{}, fmt.Errorf("reload: %w", err)
	}
	return reply{data: nil}, nil
}
