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

// UPIDField names a string field of a UPID for ValidField.
type UPIDField uint8

// The string fields of a UPID, in the order Validate checks them.
const (
	FieldNode UPIDField = iota
	FieldType
	FieldID
	FieldUser
)

// ValidNumbers reports whether the kind and the numeric fields of u pass
// Validate's checks. With ValidField for each string field it is Validate
// as a yes or no, for a caller that checks each distinct string once (a
// store interning them) and calls Validate for the error.
func (u UPID) ValidNumbers() bool {
	return (u.Kind == PVE || u.Kind == PBS) && u.validateNumbers() == nil
}

// ValidField reports whether v passes Validate's checks as the field f of
// a UPID of kind k (PVE or PBS).
func ValidField(k Kind, f UPIDField, v string) bool {
	if f == FieldNode {
		return checkNode("", v) == nil
	}
	return validateString(k == PBS, int(f-FieldType), v) == nil
}

func (u UPID) validate() *UPIDError {
	if u.Kind != PVE && u.Kind != PBS {
		return &UPIDError{Part: "kind", Reason: "neither PVE nor PBS"}
	}
	if err := checkNode("", u.Node); err != nil {
		return err.(*UPIDError)
	}
	if err := u.validateNumbers(); err != nil {
		return err
	}
	for i, v := range [3]string{u.Type, u.ID, u.User} {
		if err := validateString(u.Kind == PBS, i, v); err != nil {
			return err
		}
	}
	return nil
}

// validateNumbers checks the numbers of a UPID of a valid kind.
func (u UPID) validateNumbers() *UPIDError {
	switch {
	case u.PStart > 0xFFFFFFFFF:
		return &UPIDError{Part: "pstart", Reason: fmt.Sprintf("%d: over 9 hex digits", u.PStart)}
	case u.StartTime < 0 || u.StartTime > 0xFFFFFFFF:
		return &UPIDError{Part: "starttime", Reason: fmt.Sprintf("%d: not 8 hex digits", u.StartTime)}
	case u.Kind != PBS && u.TaskID != 0:
		return &UPIDError{Part: "task id", Reason: "a PVE upid has none"}
	}
	return nil
}

// validateString checks the i-th of type, id and user.
func validateString(pbs bool, i int, v string) *UPIDError {
	names := [3]string{"type", "id", "user"}
	if pbs {
		names = [3]string{"worker type", "worker id", "auth id"}
	}
	if !utf8.ValidString(v) {
		return &UPIDError{Part: names[i], Reason: "not valid UTF-8"}
	}
	if pbs && i == 1 {
		return nil // escaped when formatted: any text
	}
	if strings.Contains(v, ":") {
		return &UPIDError{Part: names[i], Reason: fmt.Sprintf("%q contains ':'", v)}
	}
	if err := checkField("", names[i], v, i == 1, pbs); err != nil {
		return err.(*UPIDError)
	}
	return nil
}
