package config

import (
	"slices"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

func TestDiff(t *testing.T) {
	remote := func(id string) Remote {
		return Remote{ID: id, Type: task.PVE, TokenID: "a@pve!t", TokenSecret: "s", MaxConnections: 5,
			Endpoints: []Endpoint{{URL: "https://" + id + ":8006"}}}
	}
	old := &Config{Remotes: []Remote{remote("keep"), remote("gone"), remote("secret"), remote("endpoint"), remote("limit")}}
	cur := &Config{Remotes: []Remote{remote("new"), remote("keep"), remote("secret"), remote("endpoint"), remote("limit"), remote("another")}}
	cur.Remotes[2].TokenSecret = "changed"
	cur.Remotes[3].Endpoints = append(cur.Remotes[3].Endpoints, Endpoint{URL: "https://x:8006"})
	cur.Remotes[4].MaxConnections = 1
	cur.Polling.Tick = 99 // ignored

	added, removed, changed := cur.Diff(old)
	check := func(name string, got, want []string) {
		if !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	check("added", added, []string{"another", "new"})
	check("removed", removed, []string{"gone"})
	check("changed", changed, []string{"endpoint", "limit", "secret"})

	added, removed, changed = cur.Diff(nil)
	check("added from nil", added, []string{"another", "endpoint", "keep", "limit", "new", "secret"})
	check("removed from nil", removed, nil)
	check("changed from nil", changed, nil)

	added, removed, changed = cur.Diff(cur)
	if added != nil || removed != nil || changed != nil {
		t.Errorf("Diff(self) = %q %q %q, want nothing", added, removed, changed)
	}
}
