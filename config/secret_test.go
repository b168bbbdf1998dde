package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/taskfleet/taskfleet/task"
)

func TestSecretNeverPrints(t *testing.T) {
	const value = "hunter2-very-secret"
	s := Secret(value)
	r := Remote{ID: "a", Type: task.PVE, TokenSecret: s}
	tok := APIToken{ID: "ui", Secret: s}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-20v"} {
		outputs = append(outputs,
			fmt.Sprintf(verb, s), fmt.Sprintf(verb, r), fmt.Sprintf(verb, &r),
			fmt.Sprintf(verb, tok), fmt.Sprintf(verb, []Remote{r}))
	}
	outputs = append(outputs, s.String(), s.GoString(), fmt.Sprint(s), fmt.Sprintln(r))
	for _, v := range []any{s, r, tok, Config{Remotes: []Remote{r}, APITokens: []APIToken{tok}}} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(j))
	}
	txt, _ := s.MarshalText()
	outputs = append(outputs, string(txt))
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "secret", s, "remote", r)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "secret", s)
	outputs = append(outputs, logged.String())

	for _, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("secret printed: %s", out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("output without [redacted]: %s", out)
		}
	}
	if s.Reveal() != value {
		t.Errorf("Reveal() = %q, want the value", s.Reveal())
	}
}

// TestSecretsNotInProblems puts secrets where they do not belong: no
// problem may contain one, while each misplacement is still reported.
func TestSecretsNotInProblems(t *testing.T) {
	secrets := map[string]string{
		"listen":      "s3cr3t-listen-0001",
		"tick":        "s3cr3t-tick-0002",
		"type":        "s3cr3t-type-0003",
		"token_id":    "s3cr3t-tokenid-0004",
		"url":         "s3cr3t-url-0005",
		"fingerprint": "s3cr3t-fp-0006",
		"unknown":     "s3cr3t-unknown-0007",
		"remotes":     "s3cr3t-remotes-0008",
		"short":       "s3cr3t-9",
		"both":        "s3cr3t-both-0010",
		"id":          "s3cr3t-id-0011", // also the remote's real secret
		"file":        "s3cr3t file 0012",
		"badchars":    "s3cr3t\tbad-0013",
	}
	src := fmt.Sprintf(`[server]
listen = %q
[polling]
tick = %q
[[remote]]
id = %q
type = %q
token_id = %q
token_secret = %q
endpoints = [
  { url = "https://user:%s@host", fingerprint = %q },
]
tokensecret = %q
[[remote]]
id = "b"
type = "pve"
token_id = "a@pve!tok"
token_secret = %q
token_secret_file = "b.secret"
endpoints = [{ url = "https://b" }]
[[remote]]
id = "c"
type = "pve"
token_id = "a@pve!tok"
token_secret_file = "c.secret"
endpoints = [{ url = "https://c" }]
[[remote]]
id = "d"
type = "pve"
token_id = "a@pve!tok"
token_secret = %q
endpoints = [{ url = "https://d" }]
[[api_token]]
id = "ui"
secret = %q
remotes = [%q]
`, secrets["listen"], secrets["tick"], secrets["id"], secrets["type"], secrets["token_id"], secrets["id"],
		secrets["url"], secrets["fingerprint"], secrets["unknown"], secrets["both"], secrets["badchars"],
		secrets["short"], secrets["remotes"])
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"b.secret": secrets["both"], "c.secret": secrets["file"] + "\n"})
	_, err := Parse([]byte(src), "taskfleet.toml", dir)
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("Parse = %v, want a *ValidationError", err)
	}
	text := err.Error() + fmt.Sprintf("%+v %#v", ve.Problems, ve.Problems)
	for where, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("secret placed in %s appears in the problems", where)
		}
	}
	for _, field := range []string{
		"server.listen", "polling.tick", "type", "token_id", "endpoints[0].url", "endpoints[0].fingerprint",
		"tokensecret: unknown key", `remote "b": token_secret: set either`, `remote "c": token_secret_file`,
		`remote "d": token_secret: secret contains white space`, "api_token[0].secret: secret is shorter",
		"api_token[0].remotes[0]",
	} {
		if !strings.Contains(text, field) {
			t.Errorf("no problem about %s:\n%s", field, err)
		}
	}
	if !strings.Contains(text, `remote "[redacted]"`) {
		t.Errorf("the remote id equal to a secret was not redacted:\n%s", err)
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"newline":  "abc-def\n",
		"crlf":     "abc-def\r\n\n",
		"empty":    "",
		"blank":    " \n\t\n",
		"inner":    "abc def\n",
		"big":      strings.Repeat("x", maxSecretFile+1),
		"max":      strings.Repeat("x", maxSecretFile),
		"unicode":  "abc\u00e9\n",
		"dir/file": "x",
	})
	cases := []struct {
		name, want, err string
	}{
		{name: "newline", want: "abc-def"},
		{name: "crlf", want: "abc-def"},
		{name: "max", want: strings.Repeat("x", maxSecretFile)},
		{name: "empty", err: "secret file DIR/empty: secret is empty"},
		{name: "blank", err: "secret file DIR/blank: secret is empty"},
		{name: "inner", err: "secret file DIR/inner: secret contains white space, control or non-ASCII characters"},
		{name: "unicode", err: "secret file DIR/unicode: secret contains white space, control or non-ASCII characters"},
		{name: "big", err: "secret file DIR/big is larger than 4096 bytes"},
		{name: "missing", err: "read secret: open DIR/missing: no such file or directory"},
		{name: "dir", err: "read secret DIR/dir: read DIR/dir: is a directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readSecretFile(filepath.Join(dir, c.name))
			if c.err == "" {
				if err != nil || got != c.want {
					t.Errorf("readSecretFile = %q, %v; want %q", got, err, c.want)
				}
				return
			}
			want := strings.ReplaceAll(c.err, "DIR", dir)
			if err == nil || err.Error() != want {
				t.Errorf("readSecretFile error = %v, want %s", err, want)
			}
		})
	}
	if os.Geteuid() != 0 { // root reads anything
		p := filepath.Join(dir, "unreadable")
		writeFiles(t, dir, map[string]string{"unreadable": "x"})
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := readSecretFile(p); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("readSecretFile(unreadable) = %v, want permission denied", err)
		}
	}
}
