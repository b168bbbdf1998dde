package task

import "fmt"

// Kind is the product a remote runs: Proxmox VE or Proxmox Backup Server.
type Kind uint8

const (
	// PVE is a Proxmox VE cluster.
	PVE Kind = iota + 1
	// PBS is a Proxmox Backup Server.
	PBS
)

// String returns "pve" or "pbs", the names Proxmox Datacenter Manager uses.
func (k Kind) String() string {
	switch k {
	case PVE:
		return "pve"
	case PBS:
		return "pbs"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind parses "pve" or "pbs".
func ParseKind(s string) (Kind, error) {
	switch s {
	case "pve":
		return PVE, nil
	case "pbs":
		return PBS, nil
	}
	return 0, fmt.Errorf("remote type %q: want \"pve\" or \"pbs\"", s)
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) {
	if k != PVE && k != PBS {
		return nil, fmt.Errorf("invalid remote type %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}
