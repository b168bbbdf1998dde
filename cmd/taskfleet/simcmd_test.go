package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"
)

// TestSimKeepsCertificates: taskfleet sim run again with the same --out
// presents the same certificates, so the configuration it wrote stays
// valid for a serve that runs on it.
func TestSimKeepsCertificates(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	path := filepath.Join(out, "taskfleet.toml")
	fingerprint := regexp.MustCompile(`fingerprint = "([0-9A-F:]{95})"`)
	runOnce := func() []string {
		os.Remove(path)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		var stdout, stderr syncBuffer
		go func() {
			done <- dispatch(ctx, []string{"sim", "--out", out, "--pve", "2", "--pbs", "1", "--history", "1h"}, &stdout, &stderr)
		}()
		eventually(t, 30*time.Second, "sim wrote no configuration", func() bool {
			_, err := os.Stat(path)
			return err == nil
		})
		cancel()
		if code := <-done; code != exitOK {
			t.Fatalf("sim exited with %d: %s", code, stderr.String())
		}
		data, _ := os.ReadFile(path)
		var fps []string
		for _, m := range fingerprint.FindAllStringSubmatch(string(data), -1) {
			fps = append(fps, m[1])
		}
		return fps
	}
	first, second := runOnce(), runOnce()
	if len(first) != 7 || !slices.Equal(first, second) {
		t.Errorf("fingerprints after a restart:\n%v\nwere\n%v", second, first)
	}
}
