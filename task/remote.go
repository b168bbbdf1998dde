package task

import (
	"fmt"
	"strings"
)

// RemoteUPID is a UPID qualified with the remote it ran on, as Proxmox
// Datacenter Manager writes it: "pve:REMOTE!UPID:..." or "pbs:REMOTE!UPID:...".
type RemoteUPID struct {
	Remote string
	UPID   UPID

	// legacy marks the old form "REMOTE!UPID:..." without the type, which
	// is accepted when parsing and kept when formatting so that parsing
	// round-trips. New values always use the typed form.
	legacy bool
}

// String formats the remote UPID.
func (r RemoteUPID) String() string {
	if r.legacy {
		return r.Remote + "!" + r.UPID.String()
	}
	return r.UPID.Kind.String() + ":" + r.Remote + "!" + r.UPID.String()
}

// ParseRemoteUPID parses PDM's remote-qualified UPID. It splits at the first
// '!' (a token user inside the UPID may contain more); the part before is
// "type:remote" or, in the old form, just the remote with the type deduced
// from the UPID. Unlike PDM it validates the native UPID in both forms and
// checks that the type agrees with it.
func ParseRemoteUPID(s string) (RemoteUPID, error) {
	head, native, ok := strings.Cut(s, "!")
	if !ok {
		return RemoteUPID{}, fmt.Errorf("invalid remote upid %q: missing '!' between remote and upid", short(s))
	}
	var r RemoteUPID
	typ, remote, typed := strings.Cut(head, ":")
	if typed {
		k, err := ParseKind(typ)
		if err != nil {
			return RemoteUPID{}, fmt.Errorf("invalid remote upid %q: %w", short(s), err)
		}
		r.Remote = remote
		if r.UPID, err = parseKindUPID(k, native); err != nil {
			return RemoteUPID{}, err
		}
	} else {
		r.Remote, r.legacy = head, true
		var err error
		if r.UPID, err = ParseUPID(native); err != nil {
			return RemoteUPID{}, err
		}
	}
	if err := ValidateRemoteID(r.Remote); err != nil {
		return RemoteUPID{}, fmt.Errorf("invalid remote upid %q: %w", short(s), err)
	}
	return r, nil
}

func parseKindUPID(k Kind, s string) (UPID, error) {
	if k == PBS {
		return ParsePBS(s)
	}
	return ParsePVE(s)
}

// ValidateRemoteID checks a remote id against Proxmox's SAFE_ID pattern
// [A-Za-z0-9_][A-Za-z0-9._-]*, which keeps path characters out of ids that
// end up in file names and URLs.
func ValidateRemoteID(id string) error {
	if id == "" {
		return fmt.Errorf("remote id is empty")
	}
	if len(id) > 128 {
		return fmt.Errorf("remote id %q: longer than 128 characters", short(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ||
			i > 0 && (c == '.' || c == '-')
		if !ok {
			return fmt.Errorf("remote id %q: character %q at %d not allowed (letters, digits, '_', and '.' or '-' after the first)", short(id), c, i)
		}
	}
	return nil
}

func short(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
