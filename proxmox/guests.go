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

// guestItem is one entry of GET /cluster/resources?type=vm.
type guestItem struct {
	Type     string          `json:"type"`
	VMID     json.RawMessage `json:"vmid"`
	Name     string          `json:"name"`
	Node     string          `json:"node"`
	Template json.RawMessage `json:"template"`
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
	err := c.get(ctx, cl, func(dec *json.Decoder, _ string) error {
		var items []json.RawMessage
		if _, err := decodeData(dec, &items); err != nil {
			return err
		}
		if len(items) > MaxGuests {
			return &shapeError{reason: fmt.Sprintf("%d guests, more than %d", len(items), MaxGuests), offset: -1}
		}
		out = GuestList{Guests: make([]Guest, 0, len(items))}
		for i, raw := range items {
			g, err := parseGuest(raw)
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
		return nil
	})
	if err != nil {
		return GuestList{}, fmt.Errorf("list guests: %w", err)
	}
	return out, nil
}

// parseGuest reads one guest item; vmid may be a number or a string,
// template 0/1 or a boolean.
func parseGuest(raw json.RawMessage) (Guest, error) {
	var it guestItem
	if err := json.Unmarshal(raw, &it); err != nil {
		return Guest{}, fmt.Errorf("not a guest object: %w", err)
	}
	vmid := strings.Trim(string(it.VMID), `"`)
	if n, err := strconv.ParseUint(vmid, 10, 32); err != nil || n == 0 || strconv.FormatUint(n, 10) != vmid {
		return Guest{}, fmt.Errorf("vmid %s is not a positive integer", it.VMID)
	}
	if it.Node == "" {
		return Guest{}, fmt.Errorf("guest %s has no node", vmid)
	}
	tmpl := strings.Trim(string(it.Template), `"`)
	return Guest{VMID: vmid, Type: it.Type, Name: it.Name, Node: it.Node, Template: tmpl == "1" || tmpl == "true"}, nil
}
