package taskfleet_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet"
	"github.com/taskfleet/taskfleet/config"
)

// TestStartReportsUnusableCache checks that Start fails with the cache's
// error instead of waiting for a cache that cannot be opened.
func TestStartReportsUnusableCache(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Server.CacheDir = filepath.Join(file, "cache")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	svc, err := taskfleet.Start(ctx, &cfg)
	if err == nil {
		svc.Stop(ctx)
		t.Fatal("Start succeeded on a cache dir below a file")
	}
	if ctx.Err() != nil || !strings.Contains(err.Error(), "cache") {
		t.Errorf("Start = %v, want the cache's error before the deadline", err)
	}
}
