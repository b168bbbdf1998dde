package config

import (
	"strings"
	"testing"
)

func TestParseFingerprint(t *testing.T) {
	const want = "17:F2:A0:3B:4C:5D:6E:7F:80:91:A2:B3:C4:D5:E6:F7:08:19:2A:3B:4C:5D:6E:7F:80:91:A2:B3:C4:D5:E6:F7"
	lower := strings.ToLower(want)
	bare := strings.ReplaceAll(want, ":", "")
	for _, in := range []string{
		want,
		lower,
		bare,
		strings.ToLower(bare),
		"sha256 Fingerprint=" + want,           // openssl 3
		"SHA256 Fingerprint=" + want + "\n",    // openssl 1.1, with the newline
		"  sha256 Fingerprint=" + lower + "  ", // pasted with spaces
	} {
		got, err := ParseFingerprint(in)
		if err != nil || got != want {
			t.Errorf("ParseFingerprint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, c := range []struct{ in, msg string }{
		{"AB:CD", `got "AB:CD", 2 bytes: want 32 hex bytes`},
		{"not a fingerprint", `got 17 characters, not hex: want 32 hex bytes`},
		{"0123456789abcdef0123456789abcdef01234567890a", `got 44 hex digits (22 bytes): want 32 hex bytes`},
		{"SHA1 Fingerprint=AB:CD", `got a SHA1 fingerprint: want the SHA-256 one`},
		{strings.Repeat("AB:", 19) + "AB", `20 bytes: that is a SHA-1 fingerprint`},
		{want + ":00", `33 bytes: want 32 hex bytes`},
		{bare + "0", `got 65 hex digits, an odd number: want 32 hex bytes`},
	} {
		_, err := ParseFingerprint(c.in)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseFingerprint(%q) error %v; want it to contain %q", c.in, err, c.msg)
		}
	}
}

// TestFingerprintInConfig: every form is accepted in a configuration file
// and stored in the canonical form; a wrong one names the line, the remote,
// the field and what was received.
func TestFingerprintInConfig(t *testing.T) {
	const fp = "17:F2:A0:3B:4C:5D:6E:7F:80:91:A2:B3:C4:D5:E6:F7:08:19:2A:3B:4C:5D:6E:7F:80:91:A2:B3:C4:D5:E6:F7"
	src := func(v string) string {
		return `[server]
cache_dir = "/tmp/c"

[[remote]]
id = "pve-east"
type = "pve"
token_id = "taskfleet@pve!poll"
token_secret = "0123456789abcdef0123"
endpoints = [ { url = "https://192.0.2.10:8006", fingerprint = "` + v + `" } ]
`
	}
	cfg, err := Parse([]byte(src("sha256 Fingerprint="+strings.ToLower(fp))), "taskfleet.toml", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Remotes[0].Endpoints[0].Fingerprint; got != fp {
		t.Errorf("fingerprint %q, want %q", got, fp)
	}
	_, err = Parse([]byte(src("12:34")), "taskfleet.toml", "")
	want := `taskfleet.toml:9: remote "pve-east": endpoints[0].fingerprint: got "12:34", 2 bytes: want 32 hex bytes`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error\n%v\nwant it to start with\n%s", err, want)
	}
}
