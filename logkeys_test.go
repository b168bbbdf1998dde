package taskfleet_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// zerologField matches a zerolog field with a literal key: the receiver's
// name (to leave out flag.FlagSet's methods of the same names), the
// method and the key.
var zerologField = regexp.MustCompile(`(\w*)\.(Str|Strs|Stringer|Int|Ints|Int32|Int64|Uint|Uint32|Uint64|Float32|Float64|Dur|Bool|Time|TimeDiff|Interface|Any|AnErr|Errs|Hex|Bytes|RawJSON|IPAddr|Object|Array|Dict)\("([a-z0-9_]+)"`)

// docKey matches the keys in the first cell of a table row of
// docs/logging.md.
var docKey = regexp.MustCompile("`([a-z0-9_]+)`")

// TestLogKeysDocumented: every key the code logs is listed in
// docs/logging.md, and a duration's key says its unit (style rule 8).
func TestLogKeysDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("docs", "logging.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{"error": true} // zerolog's Err, described in the text
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.SplitN(line[1:], "|", 2)[0]
		for _, m := range docKey.FindAllStringSubmatch(first, -1) {
			documented[m[1]] = true
		}
	}
	missing := map[string][]string{}
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			for _, m := range zerologField.FindAllStringSubmatch(line, -1) {
				recv, method, key := m[1], m[2], m[3]
				if recv == "fs" || recv == "flag" {
					continue
				}
				where := path + ":" + strconv.Itoa(i+1)
				if method == "Dur" && !strings.HasSuffix(key, "_ms") {
					t.Errorf("%s: duration key %q without its unit (want %s_ms)", where, key, key)
				}
				if !documented[key] {
					missing[key] = append(missing[key], where)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(missing))
	for k := range missing {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Errorf("log key %q (%s) is not listed in docs/logging.md", k, strings.Join(missing[k], ", "))
	}
}
