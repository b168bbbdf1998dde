package config

import (
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/taskfleet/taskfleet/internal/atomicfile"
	"github.com/taskfleet/taskfleet/task"
)

// Editing a configuration file as text, so that its comments and layout
// stay: "taskfleet remote add" appends a [[remote]] block and "remote
// remove" cuts one out; both validate the result before writing it.

// RemoteBlock is where a [[remote]] table is in a configuration file.
type RemoteBlock struct {
	ID    string // its id, "" when not a string
	Index int    // its index in the file, as in "remote[2]"
	// Start and End are the first and last line of the block (1-based,
	// inclusive): the comment lines directly above the header, the header,
	// and everything up to the next table (without the comments directly
	// above that one, which belong to it) or the end, without trailing
	// blank lines.
	Start, End int
}

// RemoteBlocks returns the [[remote]] tables of a configuration file, in
// file order. The file must be valid TOML; its keys need not be valid.
func RemoteBlocks(data []byte) ([]RemoteBlock, error) {
	var raw struct {
		Remotes []struct {
			ID any `toml:"id"`
		} `toml:"remote"`
	}
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	src := string(data)
	lines := strings.Split(src, "\n")
	pos := scanKeys(src)
	isHeader := map[int]bool{}
	for _, p := range pos.list {
		// A remote's own sub-tables ([[remote.endpoints]], [remote.x])
		// belong to its block; any other table header ends it.
		if p.line-1 < len(lines) {
			h := strings.TrimSpace(lines[p.line-1])
			if strings.HasPrefix(h, "[") && !strings.HasPrefix(strings.TrimLeft(h, "[ \t"), "remote.") {
				isHeader[p.line] = true
			}
		}
	}
	out := make([]RemoteBlock, len(raw.Remotes))
	for i, r := range raw.Remotes {
		head := pos.byPath[fmt.Sprintf("remote[%d]", i)]
		if head == 0 {
			return nil, fmt.Errorf("parse config: [[remote]] %d not found", i)
		}
		b := RemoteBlock{Index: i, Start: head, End: len(lines)}
		b.ID, _ = r.ID.(string)
		for l := head + 1; l <= len(lines); l++ {
			if isHeader[l] {
				b.End = l - 1
				break
			}
		}
		// The next table's own comments and the blank lines before them.
		for b.End > head && isComment(lines[b.End-1]) {
			b.End--
		}
		for b.End > head && strings.TrimSpace(lines[b.End-1]) == "" {
			b.End--
		}
		for b.Start > 1 && isComment(lines[b.Start-2]) {
			b.Start--
		}
		out[i] = b
	}
	return out, nil
}

func isComment(line string) bool { return strings.HasPrefix(strings.TrimSpace(line), "#") }

// AppendRemote returns data with block (a [[remote]] table, ending with a
// newline) appended after one blank line.
func AppendRemote(data []byte, block string) []byte {
	out := []byte(strings.TrimRight(string(data), "\n"))
	if len(out) > 0 {
		out = append(out, "\n\n"...)
	}
	return append(out, block...)
}

// RemoveRemote returns data without the [[remote]] table whose id is id,
// and the block removed.
func RemoveRemote(data []byte, id string) ([]byte, RemoteBlock, error) {
	blocks, err := RemoteBlocks(data)
	if err != nil {
		return nil, RemoteBlock{}, err
	}
	for _, b := range blocks {
		if b.ID != id {
			continue
		}
		lines := strings.Split(string(data), "\n")
		rest := append(append([]string{}, lines[:b.Start-1]...), lines[b.End:]...)
		// One blank line where the block was, not two.
		if k := b.Start - 1; k > 0 && k < len(rest) && strings.TrimSpace(rest[k-1]) == "" && strings.TrimSpace(rest[k]) == "" {
			rest = append(rest[:k], rest[k+1:]...)
		}
		return []byte(strings.TrimLeft(strings.Join(rest, "\n"), "\n")), b, nil
	}
	return nil, RemoteBlock{}, fmt.Errorf("no [[remote]] has id %q", id)
}

// NormalizeURL checks an endpoint URL as the configuration does and
// returns it as https://host:port, with the product's default port.
func NormalizeURL(raw string, kind task.Kind) (string, error) { return normalizeURL(raw, kind) }

// Where returns the problem location of a key of a configuration file
// (a path such as "server.cache_dir" or "remote[1].endpoints[0].url"):
// the file, the line, and the remote id and field for a remote's keys.
// Runtime errors about a setting (a port in use, a directory that cannot
// be written) are reported with it. The line is 0 when the file cannot
// be read or does not set the key (a default).
func Where(file, path string) Problem {
	p := Problem{File: file, Field: path}
	data, err := os.ReadFile(file)
	if err != nil {
		return p
	}
	pos := scanKeys(string(data))
	p.Line = pos.line(path)
	if m := remotePath.FindStringSubmatch(path); m != nil {
		if id, ok := remoteIDAt(data, m[1]); ok {
			p.Remote, p.Field = id, m[2]
		}
	}
	if _, set := pos.byPath[path]; !set && !strings.HasPrefix(path, "remote[") {
		p.Field += " (default)"
	}
	return p
}

// remoteIDAt returns the id of remote[index] of data.
func remoteIDAt(data []byte, index string) (string, bool) {
	blocks, err := RemoteBlocks(data)
	if err != nil {
		return "", false
	}
	for _, b := range blocks {
		if fmt.Sprint(b.Index) == index && b.ID != "" && task.ValidateRemoteID(b.ID) == nil {
			return b.ID, true
		}
	}
	return "", false
}

// WriteFile replaces the file at path with data, crash-safely
// (atomicfile.Replace): the file keeps its mode and its owner and group
// (new files get perm), so an edit under sudo leaves a root:taskfleet
// 0640 file readable by the service.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return atomicfile.Replace(path, data, perm)
}

// Quote returns s as a TOML basic string.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// ReadSecretFile reads a secret file as the configuration does: trailing
// white space removed, the content checked. Errors never show it.
func ReadSecretFile(path string) (Secret, error) {
	s, err := readSecretFile(path)
	if err != nil {
		return "", err
	}
	return Secret(s), nil
}
