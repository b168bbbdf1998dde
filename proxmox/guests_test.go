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
		{VMID: 100, Type: "qemu", Name: "web", Node: "pve1"},
		{VMID: 101, Type: "lxc", Node: "pve2"},
		{VMID: 9000, Type: "qemu", Name: "tmpl", Node: "pve1", Template: true},
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

// TestGuestsOddItems: an item whose fields have the wrong type, or that is
// not an object, is skipped with a reason; the others are read, escapes
// and non-ASCII names included.
func TestGuestsOddItems(t *testing.T) {
	ts := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":[
			{"type":"qemu","vmid":100,"name":"caf\u00e9 \"db\"","node":"pve1"},
			{"type":7,"vmid":101,"node":"pve1"},
			{"type":"lxc","vmid":102,"node":["pve1"]},
			null,
			{},
			42,
			{"type":"lxc","vmid":103,"name":"Zürich","node":"pve2","template":"1"}
		]}`))
	}))
	c := newTestClient(t, testConfig(task.PVE, ts.endpoint()))
	got, err := c.Guests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Guest{
		{VMID: 100, Type: "qemu", Name: `café "db"`, Node: "pve1"},
		{VMID: 103, Type: "lxc", Name: "Zürich", Node: "pve2", Template: true},
	}
	if !reflect.DeepEqual(got.Guests, want) {
		t.Errorf("guests %+v, want %+v", got.Guests, want)
	}
	wantSkipped := []string{
		"guest item 1: type is not a string",
		"guest item 2: node is not a string",
		"guest item 3: not a guest object",
		"guest item 4: not a guest object",
		"guest item 5: not a guest object",
	}
	if got.Omitted != len(wantSkipped) || !reflect.DeepEqual(got.Skipped, wantSkipped) {
		t.Errorf("skipped %d: %q, want %q", got.Omitted, got.Skipped, wantSkipped)
	}
}

// TestGuestsMalformed: a guest list that cannot be read as a whole fails
// with a MalformedError naming why and, where known, the byte offset; odd
// but valid JSON (escaped or repeated names, other members) is read.
func TestGuestsMalformed(t *testing.T) {
	tooMany := `{"data":[` + strings.Repeat(`{},`, MaxGuests) + `{}]}`
	for _, tc := range []struct {
		name, body string
		reason     string // "" means no error
		offset     int64  // checked when >= 0
		guests     int
	}{
		{"empty body", ``, "empty body", -1, 0},
		{"no data", `{"total":3}`, `no "data" in the answer`, -1, 0},
		{"null data", `{"data":null}`, `no "data" in the answer`, -1, 0},
		{"data not an array", `{"data":{"vmid":100}}`, "data: got JSON object, want array", 8, 0},
		{"top level not an object", `[{"vmid":100}]`, "top level: got JSON array, want object", 0, 0},
		{"truncated", `{"data":[{"type":"qemu","vmid":100,"node":"pve1"},{"type":"qe`, "truncated body", -1, 0},
		{"invalid JSON", `{"data":[{"type":"qemu","vmid":100,"node":"pve1"} {"type":"lxc"}]}`, "invalid JSON", 50, 0},
		{"trailing data", `{"data":[]} x`, "data after the JSON value", -1, 0},
		{"too many", tooMany, "more than 100000 guests", -1, 0},
		{"other members and escaped names", `{"total":1,"data":[{"ty\u0070e":"qemu","vmid":100,"node":"pve1","x":{"y":[1,2]}}],"extra":[null]}`, "", -1, 1},
		{"repeated name: the last wins", `{"data":[{"type":"qemu","vmid":100,"node":7,"node":"pve1"}]}`, "", -1, 1},
		{"repeated names: the last wins over a bad first", `{"data":[{"type":7,"type":"lxc","vmid":"x","vmid":101,"name":[],"name":"a","node":"pve1"}]}`, "", -1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tc.body))
			}))
			c := newTestClient(t, testConfig(task.PVE, ts.endpoint()))
			got, err := c.Guests(context.Background())
			if tc.reason == "" {
				if err != nil || len(got.Guests) != tc.guests || got.Omitted != 0 {
					t.Fatalf("got %+v, %v; want %d guests", got, err, tc.guests)
				}
				return
			}
			var me *MalformedError
			if !errors.As(err, &me) {
				t.Fatalf("err = %v, want a MalformedError", err)
			}
			if me.Reason != tc.reason || (tc.offset >= 0 && me.Offset != tc.offset) {
				t.Errorf("reason %q at %d, want %q at %d (%v)", me.Reason, me.Offset, tc.reason, tc.offset, err)
			}
		})
	}
}
