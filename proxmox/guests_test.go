package proxmox

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

func TestGuests(t *testing.T) {
	var query string
	ts := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api2/json/cluster/resources" {
			http.NotFound(w, r)
			return
		}
		query = r.URL.RawQuery
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":[
			{"id":"qemu/100","type":"qemu","vmid":100,"name":"web","node":"pve1","status":"running","template":0},
			{"id":"lxc/101","type":"lxc","vmid":"101","node":"pve2","status":"stopped"},
			{"id":"qemu/9000","type":"qemu","vmid":9000,"name":"tmpl","node":"pve1","template":1},
			{"id":"qemu/0","type":"qemu","vmid":0,"node":"pve1"},
			{"id":"qemu/102","type":"qemu","vmid":102},
			{"id":"storage/pve1/local","type":"storage","node":"pve1","vmid":1},
			"garbage"
		]}`))
	}))
	c := newTestClient(t, testConfig(task.PVE, ts.endpoint()))
	got, err := c.Guests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if query != "type=vm" {
		t.Errorf("query %q, want type=vm", query)
	}
	want := []Guest{
		{VMID: "100", Type: "qemu", Name: "web", Node: "pve1"},
		{VMID: "101", Type: "lxc", Node: "pve2"},
		{VMID: "9000", Type: "qemu", Name: "tmpl", Node: "pve1", Template: true},
	}
	if !reflect.DeepEqual(got.Guests, want) {
		t.Errorf("guests %+v, want %+v", got.Guests, want)
	}
	if got.Omitted != 3 || len(got.Skipped) != 3 || !strings.Contains(got.Skipped[0], "guest item 3: vmid 0") || !strings.Contains(got.Skipped[1], "no node") {
		t.Errorf("skipped %d: %q", got.Omitted, got.Skipped)
	}

	pbs := newTestClient(t, testConfig(task.PBS, ts.endpoint()))
	if _, err := pbs.Guests(context.Background()); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("PBS: err = %v", err)
	}
}
