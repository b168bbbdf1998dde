package api

import "strings"

// maxReasonBytes bounds the reason /readyz shows (it needs no token).
const maxReasonBytes = 300

// oneLine returns err's text on one line and bounded, for /readyz.
func oneLine(err error) string {
	why := strings.Join(strings.Fields(err.Error()), " ")
	if len(why) > maxReasonBytes {
		why = why[:maxReasonBytes] + "…"
	}
	return why
}
