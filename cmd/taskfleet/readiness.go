package main

import "github.com/taskfleet/taskfleet/api"

var _ api.NotReadyReporter = (*backend)(nil)

// NotReady implements api.NotReadyReporter: why /readyz answers 503.
func (b *backend) NotReady() error {
	s := b.service()
	if s == nil {
		return errNotStarted
	}
	return s.NotReady()
}
