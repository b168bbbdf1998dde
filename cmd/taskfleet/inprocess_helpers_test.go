package main

import (
	"context"
	"testing"
	"time"
)

// servedInProcess is a `taskfleet serve` running in the test process
// (so the race detector watches the daemon's wiring), and a client of its
// API.
type servedInProcess struct {
	t      *testing.T
	c      *apiClient
	stdout syncBuffer
	stderr syncBuffer
	cancel context.CancelFunc
	exited chan int
}

// serveInProcess starts serve with the configuration at path (and extra
// arguments), learns from its log where its API listens (the
// configuration's listen may name port 0) and waits until it is ready; a
// serve that exits first fails the test. The daemon is stopped at the
// test's end if stop was not called.
func serveInProcess(t *testing.T, path string, args ...string) *servedInProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &servedInProcess{t: t, cancel: cancel, exited: make(chan int, 1)}
	go func() {
		s.exited <- dispatch(ctx, append([]string{"serve", "--config", path}, args...), &s.stdout, &s.stderr)
	}()
	t.Cleanup(cancel)
	alive := func() bool {
		select {
		case code := <-s.exited:
			t.Fatalf("serve exited with %d:\n%s", code, s.stderr.String())
		default:
		}
		return true
	}
	s.c = &apiClient{t: t, base: apiURL(t, s.stderr.String, alive)}
	s.c.waitReadyWhile(alive)
	return s
}

// stop ends serve through its context and fails the test unless it exits
// 0 within 30 s.
func (s *servedInProcess) stop() {
	s.t.Helper()
	s.cancel()
	select {
	case code := <-s.exited:
		if code != 0 {
			s.t.Fatalf("serve exited with %d after its context ended, want 0:\n%s", code, tail(s.stderr.String(), 3000))
		}
	case <-time.After(30 * time.Second):
		s.t.Fatal("serve still running 30 s after its context ended")
	}
}
