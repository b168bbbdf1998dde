package api

import "strings"

// NotReadyReporter is implemented by a Backend that can say why it is not
// ready: /readyz then answers 503 with "not ready: REASON" (the cache is
// loading, the cache cannot be opened, the service stopped for good and
// why).
type NotReadyReporter interface {
	// NotReady returns why the backend is not ready, nil when it is.
	NotReady() error
}

// maxReasonBytes bounds the reason /readyz shows (it needs no token).
const maxReasonBytes = 300

// notReadyReason returns ": REASON" for b's NotReady, on one line and
// bounded, or "" when b gives none.
func notReadyReason(b Backend) string {
	r, ok := b.(NotReadyReporter)
	if !ok {
		return ""
	}
	err := r.NotReady()
	if err == nil {
		return ""
	}
	why := strings.Join(strings.Fields(err.Error()), " ")
	if len(why) > maxReasonBytes {
		why = why[:maxReasonBytes] + "…"
	}
	return ": " + why
}
