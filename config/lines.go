package config

import (
	"slices"
	"strconv"
	"strings"
)

// BurntSushi/toml reports the line of syntax errors but not where a key is
// defined, and MetaData.Undecoded returns key paths without the index of
// the array element they belong to. The scanner below reads the source a
// second time (after toml accepted it) and records, for every key, its path
// with array indexes and its line, so that a problem can name
// "remote[2].endpoints[1].fingerprint" and its line.

// keyPos is where a key is defined.
type keyPos struct {
	path string   // with array indexes: "remote[1].endpoints[0].url"
	keys []string // without indexes, as toml.Key: ["remote", "endpoints", "url"]
	line int      // 1-based
}

// positions is the result of scanKeys.
type positions struct {
	list   []keyPos
	byPath map[string]int // path → line
}

// line returns the line of path, or of its nearest ancestor that has one
// (the endpoint's inline table for a missing fingerprint, the [[remote]]
// header for a missing key), or 0.
func (p positions) line(path string) int {
	for path != "" {
		if l, ok := p.byPath[path]; ok {
			return l
		}
		cut := strings.LastIndexAny(path, ".[")
		if cut < 0 {
			return 0
		}
		path = path[:cut]
	}
	return 0
}

// keyScanner is a lenient reader of TOML's key structure: tables, arrays
// of tables, dotted keys, inline tables and arrays. It skips strings and
// comments and never fails; on input it does not understand, or nested
// deeper than a configuration ever is, it stops, and the keys after that
// point have no line. Its work is linear in the input: the paths it
// records are bounded by budget.
type keyScanner struct {
	src    string
	i      int            // read offset
	line   int            // line at lineAt
	lineAt int            // offset up to which newlines were counted
	depth  int            // nesting of inline tables and arrays
	budget int            // bytes of paths still to record
	arrays map[string]int // indexed path of an array of tables → index of its last element
	out    []keyPos
}

// Limits of keyScanner; a taskfleet configuration needs depth 2 and keys
// of 3 parts.
const (
	maxScanDepth    = 32
	maxScanKeyParts = 32
)

// scanKeys returns the position of every key of src.
func scanKeys(src string) positions {
	s := &keyScanner{src: src, line: 1, budget: 16*len(src) + 4096, arrays: map[string]int{}}
	s.document()
	p := positions{list: s.out, byPath: make(map[string]int, len(s.out))}
	for _, k := range s.out {
		if _, dup := p.byPath[k.path]; !dup {
			p.byPath[k.path] = k.line
		}
	}
	return p
}

// curLine returns the line of offset s.i.
func (s *keyScanner) curLine() int {
	if s.i > s.lineAt {
		s.line += strings.Count(s.src[s.lineAt:s.i], "\n")
		s.lineAt = s.i
	}
	return s.line
}

func (s *keyScanner) eof() bool  { return s.i >= len(s.src) }
func (s *keyScanner) peek() byte { return s.src[s.i] }

func (s *keyScanner) record(path string, keys []string, line int) {
	s.budget -= len(path) + 16*len(keys)
	if s.budget < 0 {
		s.stop()
		return
	}
	s.out = append(s.out, keyPos{path: path, keys: slices.Clone(keys), line: line})
}

// stop ends the scan.
func (s *keyScanner) stop() { s.i = len(s.src) }

// document reads top-level lines: table headers and key/value pairs.
func (s *keyScanner) document() {
	table, tableKeys := "", []string(nil)
	for {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		start := s.i
		if s.peek() == '[' {
			table, tableKeys = s.header()
		} else {
			s.keyValue(table, tableKeys)
		}
		s.skipLine()
		if s.i == start { // no progress: give up rather than loop
			return
		}
	}
}

// header reads "[a.b]" or "[[a.b]]" and returns the table's indexed path.
func (s *keyScanner) header() (string, []string) {
	line := s.curLine()
	s.i++ // '['
	array := !s.eof() && s.peek() == '['
	if array {
		s.i++
	}
	parts := s.key()
	path := ""
	for j, name := range parts {
		path = joinKey(path, name)
		if j < len(parts)-1 {
			if idx, ok := s.arrays[path]; ok {
				path += "[" + strconv.Itoa(idx) + "]"
			}
		}
	}
	if array {
		idx, ok := s.arrays[path]
		if !ok {
			idx = -1
		}
		s.arrays[path] = idx + 1
		path += "[" + strconv.Itoa(idx+1) + "]"
	}
	s.record(path, parts, line)
	return path, parts
}

// keyValue reads "key = value" in the table at prefix.
func (s *keyScanner) keyValue(prefix string, prefixKeys []string) {
	line := s.curLine()
	parts := s.key()
	if len(parts) == 0 {
		return
	}
	s.skipSpace(false)
	if s.eof() || s.peek() != '=' {
		return
	}
	s.i++
	path, keys := prefix, slices.Clone(prefixKeys)
	for _, name := range parts {
		path = joinKey(path, name)
		keys = append(keys, name)
	}
	s.record(path, keys, line)
	s.value(path, keys)
}

// value skips a value; inside inline tables and arrays it records the keys.
func (s *keyScanner) value(path string, keys []string) {
	s.skipSpace(false)
	if s.eof() {
		return
	}
	switch s.peek() {
	case '"', '\'':
		s.skipString()
	case '{', '[':
		if s.depth >= maxScanDepth {
			s.stop()
			return
		}
		s.depth++
		if s.peek() == '{' {
			s.inlineTable(path, keys)
		} else {
			s.array(path, keys)
		}
		s.depth--
	default:
		for !s.eof() && !strings.ContainsRune(",]}\n#", rune(s.peek())) {
			s.i++
		}
	}
}

func (s *keyScanner) inlineTable(path string, keys []string) {
	s.i++ // '{'
	for {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		switch s.peek() {
		case '}':
			s.i++
			return
		case ',':
			s.i++
			continue
		}
		start := s.i
		s.keyValue(path, keys)
		if s.i == start {
			s.stop()
			return
		}
	}
}

func (s *keyScanner) array(path string, keys []string) {
	s.i++ // '['
	for idx := 0; ; {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		switch s.peek() {
		case ']':
			s.i++
			return
		case ',':
			s.i++
			continue
		}
		start := s.i
		elem := path + "[" + strconv.Itoa(idx) + "]"
		if s.peek() == '{' {
			s.record(elem, keys, s.curLine())
		}
		s.value(elem, keys)
		idx++
		if s.i == start {
			s.stop()
			return
		}
	}
}

// key reads a possibly dotted key of bare and quoted parts.
func (s *keyScanner) key() []string {
	var parts []string
	for {
		s.skipSpace(false)
		if s.eof() {
			return parts
		}
		switch c := s.peek(); {
		case c == '"' || c == '\'':
			start := s.i
			s.skipString()
			raw := s.src[start:s.i]
			name := strings.TrimSuffix(raw[1:], string(c))
			if c == '"' {
				if u, err := strconv.Unquote(raw); err == nil {
					name = u
				}
			}
			parts = append(parts, name)
		case isBareKeyChar(c):
			start := s.i
			for !s.eof() && isBareKeyChar(s.peek()) {
				s.i++
			}
			parts = append(parts, s.src[start:s.i])
		default:
			return parts
		}
		s.skipSpace(false)
		if s.eof() || s.peek() != '.' {
			return parts
		}
		if len(parts) >= maxScanKeyParts {
			s.stop()
			return nil
		}
		s.i++
	}
}

// skipString skips a basic, literal or multi-line string starting at s.i.
func (s *keyScanner) skipString() {
	q := s.src[s.i : s.i+1]
	if strings.HasPrefix(s.src[s.i:], q+q+q) {
		end := s.i + 3
		for end < len(s.src) {
			if q == `"` && s.src[end] == '\\' {
				end += 2
				continue
			}
			if strings.HasPrefix(s.src[end:], q+q+q) {
				end += 3
				for n := 0; n < 2 && end < len(s.src) && s.src[end:end+1] == q; n++ {
					end++ // up to two quotes may precede the closing delimiter
				}
				break
			}
			end++
		}
		s.i = min(end, len(s.src))
		return
	}
	s.i++
	for !s.eof() {
		c := s.peek()
		switch {
		case c == '\\' && q == `"`:
			s.i += 2
			continue
		case c == q[0]:
			s.i++
			return
		case c == '\n':
			return
		}
		s.i++
	}
	s.i = min(s.i, len(s.src))
}

// skipSpace skips blanks and comments, and newlines too if newlines is set.
func (s *keyScanner) skipSpace(newlines bool) {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r':
			s.i++
		case '\n':
			if !newlines {
				return
			}
			s.i++
		case '#':
			for !s.eof() && s.peek() != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

// skipLine skips to the start of the next line.
func (s *keyScanner) skipLine() {
	for !s.eof() && s.peek() != '\n' {
		if c := s.peek(); c == '"' || c == '\'' {
			s.skipString()
			continue
		}
		s.i++
	}
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// joinKey appends name to a key path, quoting it when it is not bare as
// toml.Key.String does.
func joinKey(path, name string) string {
	bare := name != ""
	for i := 0; i < len(name); i++ {
		if !isBareKeyChar(name[i]) {
			bare = false
			break
		}
	}
	if !bare {
		name = strconv.Quote(name)
	}
	if path == "" {
		return name
	}
	return path + "." + name
}
