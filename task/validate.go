package task

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Validate checks that u is a UPID ParseUPID could have returned: that its
// text parses back to the same fields. A parsed UPID always passes; one
// built from fields (a decoder, a test) passes when every field follows
// the grammar ParseUPID applies (the same checks, without formatting the
// text). The error is a *UPIDError naming the wrong part.
func (u UPID) Validate() error {
	if !u.Canonical() {
		return nil // parsed
	}
	if err := u.validate(); err != nil {
		err.Input = u.String()
		return err
	}
	return nil
}

func (u UPID) validate() *UPIDError {
	pbs := u.Kind == PBS
	if u.Kind != PVE && !pbs {
		return &UPIDError{Part: "kind", Reason: "neither PVE nor PBS"}
	}
	if err := checkNode("", u.Node); err != nil {
		return err.(*UPIDError)
	}
	switch {
	case u.PStart > 0xFFFFFFFFF:
		return &UPIDError{Part: "pstart", Reason: fmt.Sprintf("%d: over 9 hex digits", u.PStart)}
	case u.StartTime < 0 || u.StartTime > 0xFFFFFFFF:
		return &UPIDError{Part: "starttime", Reason: fmt.Sprintf("%d: not 8 hex digits", u.StartTime)}
	case !pbs && u.TaskID != 0:
		return &UPIDError{Part: "task id", Reason: "a PVE upid has none"}
	}
	names := [3]string{"type", "id", "user"}
	if pbs {
		names = [3]string{"worker type", "worker id", "auth id"}
	}
	for i, v := range [3]string{u.Type, u.ID, u.User} {
		if !utf8.ValidString(v) {
			return &UPIDError{Part: names[i], Reason: "not valid UTF-8"}
		}
		if pbs && i == 1 {
			continue // escaped when formatted: any text
		}
		if strings.Contains(v, ":") {
			return &UPIDError{Part: names[i], Reason: fmt.Sprintf("%q contains ':'", v)}
		}
		if err := checkField("", names[i], v, i == 1, pbs); err != nil {
			return err.(*UPIDError)
		}
	}
	return nil
}
