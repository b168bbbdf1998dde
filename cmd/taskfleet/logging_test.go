package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsoleLogNoColorInPipes: the console log writes no colour codes
// into a pipe or a file.
func TestConsoleLogNoColorInPipes(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	for _, w := range []interface{ Write([]byte) (int, error) }{&buf, f} {
		lf := logFlags{format: "console", level: "info"}
		log, err := lf.logger(w)
		if err != nil {
			t.Fatal(err)
		}
		log.Warn().Str("remote", "pve-c001").Msg("remote down")
	}
	data, _ := os.ReadFile(f.Name())
	for name, out := range map[string]string{"buffer": buf.String(), "file": string(data)} {
		if strings.Contains(out, "\x1b[") || !strings.Contains(out, "remote down") {
			t.Errorf("%s: %q", name, out)
		}
	}
}
