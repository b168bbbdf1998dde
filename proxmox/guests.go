package proxmox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/taskfleet/taskfleet/task"
)

// MaxGuests bounds the guest list of one cluster; a longer one is refused.
const MaxGuests = 100_000

// Guest is a virtual machine or container of a PVE cluster.
type Guest struct {
	VMID     string // decimal
	Type     string // "qemu" or "lxc"
	Name     string // "" when not set
	Node     string
	Template bool
}

// GuestList is a cluster's guest list. Items that could not be read are
// left out; the first MaxSkipped are described in Skipped, all counted
// in Omitted.
type GuestList struct {
	Guests  []Guest
	Skipped []string
	Omitted int
}

// guestItem is one entry of GET /cluster/resources?type=vm. Its fields
// take any JSON value, so that one odd item cannot fail the decoding of the
// whole list, which is done in one pass (a cluster lists hundreds of
// guests with twenty fields each).
type guestItem struct {
	Type     looseString     `json:"type"`
	VMID     json.RawMessage `json:"vmid"`
	Name     looseString     `json:"name"`
	Node     looseString     `json:"node"`
	Template json.RawMessage `json:"template"`
}

// looseString is a JSON string field that accepts any value; ok reports
// whether it was a string (or absent).
type looseString struct {
	s   string
	bad bool
}

func (l *looseString) UnmarshalJSON(b []byte) error {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		if plain := b[1 : len(b)-1]; isPlainASCII(plain) {
			l.s = string(plain)
			return nil
		}
		if err := json.Unmarshal(b, &l.s); err == nil {
			return nil
		}
	}
	if string(b) != "null" {
		l.bad = true
	}
	return nil
}

// isPlainASCII reports whether b is printable ASCII without escapes, so
// that it is its own JSON string content.
func isPlainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '\\' || c == '"' {
			return false
		}
	}
	return true
}

// maxGuestSkipped bounds GuestList.Skipped.
const maxGuestSkipped = 20

// Guests lists a PVE cluster's guests: GET /cluster/resources?type=vm,
// one request for the whole cluster.
func (c *Client) Guests(ctx context.Context) (GuestList, error) {
	if c.cfg.Kind != task.PVE {
		return GuestList{}, fmt.Errorf("list guests: %s: not a PVE remote: %w", location(c.cfg.Remote, "", ""), errors.ErrUnsupported)
	}
	var out GuestList
	cl := call{path: "/api2/json/cluster/resources", query: url.Values{"type": {"vm"}}}
	err := c.get(ctx, cl, func(dec *json.Decoder, _ string) (err error) {
		out, err = decodeGuests(dec)
		return err
	})
	if err != nil {
		return GuestList{}, fmt.Errorf("list guests: %w", err)
	}
	return out, nil
}

// decodeGuests reads a guest list's answer in one pass.
func decodeGuests(dec *json.Decoder) (GuestList, error) {
	var items []guestItem
	_, err := decodeData(dec, &items)
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		// An item that is not an object (the decoding went on
		// and left it empty): reported as such below.
	case err != nil:
		return GuestList{}, err
	}
	if len(items) > MaxGuests {
		return GuestList{}, &shapeError{reason: fmt.Sprintf("%d guests, more than %d", len(items), MaxGuests), offset: -1}
	}
	out := GuestList{Guests: make([]Guest, 0, len(items))}
	for i := range items {
		g, err := parseGuest(&items[i], typeErr != nil)
		if err != nil {
			if len(out.Skipped) < maxGuestSkipped {
				out.Skipped = append(out.Skipped, fmt.Sprintf("guest item %d: %v", i, err))
			}
			out.Omitted++
			continue
		}
		if g.Type != "qemu" && g.Type != "lxc" {
			continue // another resource type: not asked for
		}
		out.Guests = append(out.Guests, g)
	}
	return out, nil
}

// parseGuest checks one decoded guest item; vmid may be a number or a
// string, template 0/1 or a boolean. notObjects says that some item of the
// list was not a JSON object (decoded as an empty item).
func parseGuest(it *guestItem, notObjects bool) (Guest, error) {
	empty := it.Type == looseString{} && it.Name == looseString{} && it.Node == looseString{} && it.VMID == nil && it.Template == nil
	if notObjects && empty {
		return Guest{}, errors.New("not a guest object")
	}
	for _, f := range []struct {
		name string
		v    looseString
	}{{"type", it.Type}, {"name", it.Name}, {"node", it.Node}} {
		if f.v.bad {
			return Guest{}, fmt.Errorf("%s is not a string", f.name)
		}
	}
	vmid := strings.Trim(string(it.VMID), `"`)
	if n, err := strconv.ParseUint(vmid, 10, 32); err != nil || n == 0 || strconv.FormatUint(n, 10) != vmid {
		return Guest{}, fmt.Errorf("vmid %s is not a positive integer", it.VMID)
	}
	if it.Node.s == "" {
		return Guest{}, fmt.Errorf("guest %s has no node", vmid)
	}
	tmpl := strings.Trim(string(it.Template), `"`)
	return Guest{VMID: vmid, Type: it.Type.s, Name: it.Name.s, Node: it.Node.s, Template: tmpl == "1" || tmpl == "true"}, nil
}
