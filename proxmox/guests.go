package proxmox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/taskfleet/taskfleet/task"
)

// MaxGuests bounds the guest list of one cluster; a longer one is refused.
const MaxGuests = 100_000

// Guest is a virtual machine or container of a PVE cluster.
type Guest struct {
	Type     string // "qemu" or "lxc"
	Name     string // "" when not set
	Node     string
	VMID     uint32 // >= 1; a cluster lists hundreds: a number is 4 bytes, a string 16 and more
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

// guestItem is one entry of GET /cluster/resources?type=vm: the raw JSON
// values of the fields taskfleet reads, so that one odd item cannot fail
// the whole list (a cluster lists hundreds of guests with twenty fields
// each, read in one pass).
type guestItem struct {
	Type, VMID, Name, Node, Template []byte // nil when absent
	object                           bool   // the item is a JSON object
}

// field returns where the value of the member name goes, or nil.
func (it *guestItem) field(name []byte) *[]byte {
	switch string(name) {
	case "type":
		return &it.Type
	case "vmid":
		return &it.VMID
	case "name":
		return &it.Name
	case "node":
		return &it.Node
	case "template":
		return &it.Template
	}
	return nil
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
	err := c.get(ctx, cl, func(b *body, _ string) (err error) {
		out, err = decodeGuests(b.tokens())
		return err
	})
	if err != nil {
		return GuestList{}, fmt.Errorf("list guests: %w", err)
	}
	return out, nil
}

// decodeGuests reads a guest list's answer in one pass: the "data" array of
// the top-level object (other members are skipped).
func decodeGuests(dec *jsontext.Decoder) (GuestList, error) {
	var items []guestItem
	seenData := false
	err := readObject(dec, "top level", func(name []byte) error {
		if string(name) != "data" {
			return dec.SkipValue()
		}
		seenData = true
		var err error
		items, err = readGuestItems(dec)
		return err
	})
	if err != nil {
		return GuestList{}, err
	}
	if !seenData || items == nil {
		return GuestList{}, &shapeError{reason: `no "data" in the answer`, offset: -1}
	}
	out := GuestList{Guests: make([]Guest, 0, len(items))}
	nodes := map[string]string{} // one string per node for the list's guests: kept by the thousand
	for i := range items {
		g, err := parseGuest(&items[i])
		if err != nil {
			if len(out.Skipped) < maxGuestSkipped {
				out.Skipped = append(out.Skipped, fmt.Sprintf("guest item %d: %v", i, err))
			}
			out.Omitted++
			continue
		}
		switch g.Type { // the constants, not the decoded copies
		case "qemu":
			g.Type = "qemu"
		case "lxc":
			g.Type = "lxc"
		default:
			continue // another resource type: not asked for
		}
		if n, ok := nodes[g.Node]; ok {
			g.Node = n
		} else {
			nodes[g.Node] = g.Node
		}
		out.Guests = append(out.Guests, g)
	}
	return out, nil
}

// readGuestItems reads the "data" array of a guest list (nil for null),
// at most MaxGuests items.
func readGuestItems(dec *jsontext.Decoder) ([]guestItem, error) {
	if dec.PeekKind() == 'n' {
		_, err := dec.ReadToken()
		return nil, err
	}
	items := []guestItem{}
	err := readArray(dec, "data", func(int) error {
		if len(items) == MaxGuests {
			return &shapeError{reason: fmt.Sprintf("more than %d guests", MaxGuests), offset: dec.InputOffset()}
		}
		var it guestItem
		if dec.PeekKind() != '{' {
			items = append(items, it)
			return dec.SkipValue()
		}
		it.object = true
		err := readObject(dec, "guest item", func(name []byte) error {
			f := it.field(name)
			if f == nil {
				return dec.SkipValue()
			}
			v, err := dec.ReadValue()
			*f = bytes.Clone(v)
			return err
		})
		items = append(items, it)
		return err
	})
	if err != nil {
		return nil, err
	}
	return items, nil
}

// parseGuest checks one guest item; vmid may be a number or a string,
// template 0/1 or a boolean.
func parseGuest(it *guestItem) (Guest, error) {
	if !it.object || it.Type == nil && it.Name == nil && it.Node == nil && it.VMID == nil && it.Template == nil {
		return Guest{}, errors.New("not a guest object")
	}
	var g Guest
	for _, f := range []struct {
		name string
		v    []byte
		to   *string
	}{{"type", it.Type, &g.Type}, {"name", it.Name, &g.Name}, {"node", it.Node, &g.Node}} {
		s, ok := jsonString(f.v)
		if !ok {
			return Guest{}, fmt.Errorf("%s is not a string", f.name)
		}
		*f.to = s
	}
	vmid := bytes.Trim(it.VMID, `"`)
	n, err := strconv.ParseUint(string(vmid), 10, 32)
	if err != nil || n == 0 || vmid[0] == '0' { // "0100" is not 100's canonical form
		return Guest{}, fmt.Errorf("vmid %s is not a positive integer", shorten(string(it.VMID), 40))
	}
	g.VMID = uint32(n)
	if g.Node == "" {
		return Guest{}, fmt.Errorf("guest %d has no node", g.VMID)
	}
	tmpl := strings.Trim(string(it.Template), `"`)
	g.Template = tmpl == "1" || tmpl == "true"
	return g, nil
}
