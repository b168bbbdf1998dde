package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads the configuration file at path: it decodes it, applies the
// defaults, reads the secret files (relative paths are relative to the
// file's directory) and validates the result. A configuration with
// problems returns a *ValidationError listing all of them.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, filepath.Dir(path))
}

// Parse is Load on data already read: name is the file name used in
// problems and baseDir the directory that relative paths are relative to
// ("" for the working directory).
func Parse(data []byte, name, baseDir string) (*Config, error) {
	var raw rawConfig
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, &ValidationError{Problems: []Problem{decodeProblem(name, err)}}
	}
	ps := &problems{file: name, pos: scanKeys(string(data))}
	b := builder{ps: ps, baseDir: baseDir}
	cfg := b.build(&raw)
	for _, k := range unknownKeys(md.Undecoded()) {
		ps.reportUnknown(k)
	}
	validate(cfg, ps)
	if err := ps.result(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// unknownKeys returns the undecoded keys whose parent was decoded: for an
// unknown table only the table is reported, not each key inside it.
func unknownKeys(undecoded []toml.Key) []toml.Key {
	seen := make(map[string]bool, len(undecoded))
	for _, k := range undecoded {
		seen[k.String()] = true
	}
	var top []toml.Key
	for _, k := range undecoded {
		parentUnknown := false
		for n := 1; n < len(k); n++ {
			if seen[k[:n].String()] {
				parentUnknown = true
				break
			}
		}
		if !parentUnknown && !seen["reported:"+k.String()] {
			seen["reported:"+k.String()] = true
			top = append(top, k)
		}
	}
	return top
}

// reportUnknown reports every definition of the unknown key k.
func (ps *problems) reportUnknown(k toml.Key) {
	found := false
	for _, p := range ps.pos.list {
		if keysEqual(p.keys, k) {
			ps.add(p.path, "unknown key")
			found = true
		}
	}
	if !found {
		ps.add(k.String(), "unknown key")
	}
}

func keysEqual(a []string, b toml.Key) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// decodeMessage matches the errors toml.Decode returns for a value of the
// wrong type where a table or an array is needed.
var decodeMessage = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)

// decodeProblem turns an error of toml.Decode into a problem. A syntax
// error can quote the text it stumbled on, which might be a misplaced
// secret, so quoted text is removed from the message.
func decodeProblem(file string, err error) Problem {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := pe.Message
		if !strings.HasPrefix(msg, "Key '") { // key names are not secret
			msg = stripQuoted(msg)
		}
		return Problem{File: file, Line: pe.Position.Line, Field: pe.LastKey, Message: "syntax error: " + msg}
	}
	m := decodeMessage.FindStringSubmatch(err.Error())
	if m == nil {
		return Problem{File: file, Message: stripQuoted(strings.TrimPrefix(err.Error(), "toml: "))}
	}
	line, _ := strconv.Atoi(m[1])
	key := m[2]
	last := key[strings.LastIndex(key, ".")+1:]
	msg := stripQuoted(m[3])
	switch last {
	case "server", "polling", "metrics":
		msg = fmt.Sprintf("want a table ([%s])", last)
	case "remote", "api_token":
		msg = fmt.Sprintf("want an array of tables ([[%s]])", last)
	case "endpoints":
		msg = `want an array of tables such as [{ url = "https://192.0.2.10:8006" }]`
	}
	return Problem{File: file, Line: line, Field: key, Message: msg}
}

// quoted matches a double- or single-quoted fragment of two or more
// characters.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.){2,}"|'[^']{2,}'`)

func stripQuoted(s string) string { return quoted.ReplaceAllString(s, "(text omitted)") }
