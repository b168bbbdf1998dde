package notify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStateCorruption: each kind of corrupt state file is a *StateError
// naming the file; a missing file is a fresh state; a saved state loads.
func TestStateCorruption(t *testing.T) {
	cases := []struct {
		name, content, want string
	}{
		{"not json", `{"version": 1, "since": `, "decode"},
		{"wrong version", `{"version": 2, "since": 5}`, "version 2, want 1"},
		{"no since", `{"version": 1}`, "no since"},
		{"too large", "", "larger than"}, // a sparse file
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "hook.json")
			if err := os.WriteFile(file, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if c.content == "" {
				if err := os.Truncate(file, maxStateFile+1); err != nil {
					t.Fatal(err)
				}
			}
			_, err := loadState(file, time.Unix(100, 0))
			var se *StateError
			if !errors.As(err, &se) || se.File != file || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a *StateError with %q", err, c.want)
			}
		})
	}
	file := filepath.Join(t.TempDir(), "notify", "hook.json")
	st, err := loadState(file, time.Unix(100, 0))
	if err != nil || st.Since != 100 || !st.created {
		t.Fatalf("missing file: %+v, %v", st, err)
	}
	st.Delivered["a"], st.Delivered["b"], st.Stale["east/100"] = 50, 500, 0
	st.forget(100)
	if err := st.save(file); err != nil {
		t.Fatal(err)
	}
	back, err := loadState(file, time.Unix(999, 0))
	if err != nil || back.Since != 100 || len(back.Delivered) != 1 || back.Delivered["b"] != 500 || len(back.Stale) != 1 || back.created {
		t.Fatalf("saved and loaded: %+v, %v", back, err)
	}
}
