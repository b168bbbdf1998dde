package config

import (
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestScanKeys(t *testing.T) {
	src := `# comment with key = "value"
title = """
multi-line string
fake = "not a key"
"""
[server] # trailing comment
listen = "127.0.0.1:8087"
"quoted key" = 'C:\dir'
a.b.c = 1

[[remote]]
id = "one"
endpoints = [
  { url = "https://a", fingerprint = "x" },   # comment
  {
    url = "https://b" },
]
nested = [[1, 2], ["]", "}"]]
[[remote]]
id = 'two'
[[remote.endpoints]]
url = "u0"
[[remote.endpoints]]
url = "u1"
[remote.extra]
k = 1
[[remote]]
id = "three"
`
	if _, err := toml.Decode(src, new(map[string]any)); err != nil {
		t.Fatalf("test document is not valid TOML: %v", err)
	}
	want := map[string]int{
		"title":                              2,
		"server":                             6,
		"server.listen":                      7,
		`server."quoted key"`:                8,
		"server.a.b.c":                       9,
		"remote[0]":                          11,
		"remote[0].id":                       12,
		"remote[0].endpoints":                13,
		"remote[0].endpoints[0]":             14,
		"remote[0].endpoints[0].url":         14,
		"remote[0].endpoints[0].fingerprint": 14,
		"remote[0].endpoints[1]":             15,
		"remote[0].endpoints[1].url":         16,
		"remote[0].nested":                   18,
		"remote[1]":                          19,
		"remote[1].id":                       20,
		"remote[1].endpoints[0]":             21,
		"remote[1].endpoints[0].url":         22,
		"remote[1].endpoints[1]":             23,
		"remote[1].endpoints[1].url":         24,
		"remote[1].extra":                    25,
		"remote[1].extra.k":                  26,
		"remote[2]":                          27,
		"remote[2].id":                       28,
	}
	pos := scanKeys(src)
	for path, line := range want {
		if got := pos.byPath[path]; got != line {
			t.Errorf("line of %s = %d, want %d", path, got, line)
		}
	}
	for _, k := range pos.list {
		if _, ok := want[k.path]; !ok {
			t.Errorf("unexpected key %s at line %d", k.path, k.line)
		}
	}
	// Fallback to the nearest ancestor.
	if got := pos.line("remote[2].token_id"); got != 27 {
		t.Errorf(`line("remote[2].token_id") = %d, want the header's 27`, got)
	}
	if got := pos.line("remote[0].endpoints[1].fingerprint"); got != 15 {
		t.Errorf(`line("remote[0].endpoints[1].fingerprint") = %d, want the inline table's 15`, got)
	}
	if got := pos.line("nowhere.at.all"); got != 0 {
		t.Errorf(`line("nowhere.at.all") = %d, want 0`, got)
	}
	// The plain keys match toml's.
	md, _ := toml.Decode(src, new(map[string]any))
	for _, k := range pos.list {
		found := false
		for _, mk := range md.Keys() {
			if keysEqual(k.keys, mk) {
				found = true
			}
		}
		if !found {
			t.Errorf("keys %q of %s are not a toml key", k.keys, k.path)
		}
	}
}

// FuzzScanKeys checks that the scanner never panics or hangs and that every
// line it reports is within the input.
func FuzzScanKeys(f *testing.F) {
	f.Add(base)
	f.Add("[[a]]\n[[a.b]]\nx = [{y = '''\n'''}]\n")
	f.Add(`"a\"b".c = "\` + "\n")
	f.Add("a = [\n{\n")
	f.Add("[a\n'")
	f.Fuzz(func(t *testing.T, src string) {
		lines := strings.Count(src, "\n") + 1
		for _, k := range scanKeys(src).list {
			if k.line < 1 || k.line > lines {
				t.Fatalf("key %s at line %d of %d", k.path, k.line, lines)
			}
		}
	})
}

// TestScanKeysLinear feeds inputs that made an earlier version quadratic
// (90 s for the brackets); each must take well under a second.
func TestScanKeysLinear(t *testing.T) {
	for name, src := range map[string]string{
		"brackets": "a=" + strings.Repeat("[", 100000),
		"dots":     strings.Repeat("a.", 50000) + "b=1",
		"inline":   strings.Repeat("a={", 30000),
		"headers":  strings.Repeat("[[a]]\n", 50000),
		"long key": "[" + strings.Repeat("k", 100000) + "]\n" + strings.Repeat("x=1\n", 20000),
	} {
		start := time.Now()
		scanKeys(src)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: scanKeys took %v", name, d)
		}
	}
}
