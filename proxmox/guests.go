package proxmox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"

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
	var out GuestList
	seenData := false
	err := readObject(dec, "top level", func(name []byte) error {
		if string(name) != "data" {
			return dec.SkipValue()
		}
		seenData = true
		var err error
		out, err = readGuests(dec)
		return err
	})
	if err != nil {
		return GuestList{}, err
	}
	if !seenData || out.Guests == nil {
		return GuestList{}, &shapeError{reason: `no "data" in the answer`, offset: -1}
	}
	return out, nil
}

// readGuests reads the "data" array of a guest list (a nil list for
// null), at most MaxGuests items. Each item is checked member by member as
// it is read, without copying its values: a cluster lists hundreds of
// guests of twenty members each, and the name is the only string of a
// guest that is not shared.
func readGuests(dec *jsontext.Decoder) (GuestList, error) {
	if dec.PeekKind() == 'n' {
		_, err := dec.ReadToken()
		return GuestList{}, err
	}
	out := GuestList{Guests: []Guest{}}
	nodes := map[string]string{} // one string per node for the list's guests: kept by the thousand
	err := readArray(dec, "data", func(i int) error {
		if i == MaxGuests {
			return &shapeError{reason: fmt.Sprintf("more than %d guests", MaxGuests), offset: dec.InputOffset()}
		}
		var it guestItem
		if dec.PeekKind() == '{' {
			it.object = true
			err := readObject(dec, "guest item", func(name []byte) error {
				f := guestMember(name) // before the read: name is valid until then
				if f < 0 {
					return dec.SkipValue()
				}
				v, err := dec.ReadValue()
				if err == nil {
					it.take(f, v, nodes)
				}
				return err
			})
			if err != nil {
				return err
			}
		} else if err := dec.SkipValue(); err != nil {
			return err
		}
		g, err := it.guest()
		switch {
		case err != nil:
			if len(out.Skipped) < maxGuestSkipped {
				out.Skipped = append(out.Skipped, fmt.Sprintf("guest item %d: %v", i, err))
			}
			out.Omitted++
		case g.Type != "": // another resource type: not asked for
			out.Guests = append(out.Guests, g)
		}
		return nil
	})
	if err != nil {
		return GuestList{}, err
	}
	return out, nil
}

// guestItem is one entry of GET /cluster/resources?type=vm as its members
// are read: the guest so far and what was wrong with it, judged by guest
// when the item ends, so that one odd item cannot fail the whole list. A
// repeated member replaces the earlier one.
type guestItem struct {
	g       Guest
	object  bool    // the item is a JSON object
	seen    bool    // it has one of the members taskfleet reads
	notStr  [3]bool // by member: type, name, node: present and neither a string nor null
	vmidOK  bool
	badVMID []byte // the vmid member's value when it is not a positive integer (a copy)
}

// The members of a guest item that taskfleet reads.
const (
	memberType = iota
	memberName
	memberNode
	memberVMID
	memberTemplate
)

// guestMember returns which member name is, -1 for one not read.
func guestMember(name []byte) int {
	switch string(name) {
	case "type":
		return memberType
	case "name":
		return memberName
	case "node":
		return memberNode
	case "vmid":
		return memberVMID
	case "template":
		return memberTemplate
	}
	return -1
}

// take takes the raw value v of member field, valid until the next read;
// strings are decoded, node names shared through nodes.
func (it *guestItem) take(field int, v []byte, nodes map[string]string) {
	it.seen = true
	switch field {
	case memberVMID:
		n, ok := parseVMID(bytes.Trim(v, `"`))
		it.g.VMID, it.vmidOK, it.badVMID = n, ok, nil
		if !ok {
			it.badVMID = bytes.Clone(v)
		}
		return
	case memberTemplate:
		t := bytes.Trim(v, `"`)
		it.g.Template = string(t) == "1" || string(t) == "true"
		return
	}
	s, ok := "", true
	switch {
	case field == memberType && string(v) == `"qemu"`: // the constants, not decoded copies
		s = "qemu"
	case field == memberType && string(v) == `"lxc"`:
		s = "lxc"
	case field == memberNode:
		s, ok = sharedString(v, nodes)
	default:
		s, ok = jsonString(v)
	}
	it.notStr[field] = !ok
	switch field {
	case memberType:
		if s != "qemu" && s != "lxc" {
			s = "" // another resource type
		}
		it.g.Type = s
	case memberName:
		it.g.Name = s
	case memberNode:
		it.g.Node = s
	}
}

// sharedString is jsonString with one string per distinct value through
// seen: a plain string already seen costs no allocation.
func sharedString(v []byte, seen map[string]string) (string, bool) {
	if len(v) >= 2 && v[0] == '"' && isPlainASCII(v[1:len(v)-1]) {
		if s, ok := seen[string(v[1:len(v)-1])]; ok {
			return s, true
		}
	}
	s, ok := jsonString(v)
	if ok {
		if shared, dup := seen[s]; dup {
			return shared, true
		}
		seen[s] = s
	}
	return s, ok
}

// guest returns the item's guest (Type "" for another resource type), or
// why the item is not one.
func (it *guestItem) guest() (Guest, error) {
	if !it.object || !it.seen {
		return Guest{}, errors.New("not a guest object")
	}
	for i, name := range [...]string{"type", "name", "node"} {
		if it.notStr[i] {
			return Guest{}, fmt.Errorf("%s is not a string", name)
		}
	}
	if !it.vmidOK {
		return Guest{}, fmt.Errorf("vmid %s is not a positive integer", shorten(string(it.badVMID), 40))
	}
	if it.g.Node == "" {
		return Guest{}, fmt.Errorf("guest %d has no node", it.g.VMID)
	}
	return it.g, nil
}

// parseVMID parses a guest id: decimal digits without a leading zero
// ("0100" is not 100's canonical form), from 1 to 2^32-1.
func parseVMID(b []byte) (uint32, bool) {
	if len(b) == 0 || len(b) > 10 || b[0] == '0' {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return uint32(n), n <= math.MaxUint32
}
