//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/sim"
)

// openPTY returns the terminal side of a new pseudo-terminal, with its
// controlling side drained in the background.
func openPTY(t *testing.T) *os.File {
	tty, _ := openPTYPair(t)
	return tty
}

// openPTYPair returns both sides of a new pseudo-terminal: what is
// written to the controlling side is the terminal's input.
func openPTYPair(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlock pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pseudo-terminal number: %v", err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: 42, Row: 24}); err != nil {
		t.Skipf("set terminal size: %v", err)
	}
	go func() { // drain what is written to the terminal
		buf := make([]byte, 4096)
		for {
			if _, err := ptmx.Read(buf); err != nil {
				return
			}
		}
	}()
	return tty, ptmx
}

// TestRemoteAddAsksOnTerminal: without --fingerprint, remote add asks
// on the terminal whether to trust the certificate: "y" adds the
// remote, anything else refuses.
func TestRemoteAddAsksOnTerminal(t *testing.T) {
	tty, ptmx := openPTYPair(t)
	old := stdin
	stdin = tty
	defer func() { stdin = old }()
	fleet := portFleet(t, sim.Config{Seed: 14, PVEClusters: 1, History: time.Hour, IndexSize: 50})
	r := fleet.Remotes()[0]
	dir := t.TempDir()
	secret := filepath.Join(dir, "s")
	os.WriteFile(secret, []byte(r.TokenSecret), 0o600)
	path := filepath.Join(dir, "taskfleet.toml")
	for _, c := range []struct {
		answer string
		code   int
	}{{"n\n", exitFailure}, {"y\n", exitOK}} {
		if _, err := ptmx.Write([]byte(c.answer)); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runCmd("remote", "add", "--config", path, "--token-id", r.TokenID, "--token-secret-file", secret, r.Endpoints[0].URL)
		if code != c.code || !strings.Contains(stdout, "Trust this certificate? [y/N]") {
			t.Errorf("answer %q: exit %d, want %d:\n%s%s", c.answer, code, c.code, stdout, stderr)
		}
	}
	cfg, err := config.Load(path)
	if err != nil || len(cfg.Remotes) != 1 || len(cfg.Remotes[0].Endpoints) != 3 {
		t.Fatalf("after yes: %v", err)
	}
}

// TestColorOnTerminalOnly: colour and the width limit apply to a
// terminal, not to a pipe or a file, and NO_COLOR turns colour off.
func TestColorOnTerminalOnly(t *testing.T) {
	tty := openPTY(t)
	t.Setenv("COLUMNS", "")
	t.Setenv("TERM", "xterm")
	os.Unsetenv("NO_COLOR")
	if !colorWanted(tty) || terminalWidth(tty) != 42 {
		t.Errorf("terminal: colour %v, width %d; want true, 42", colorWanted(tty), terminalWidth(tty))
	}
	var buf bytes.Buffer
	if colorWanted(&buf) || terminalWidth(&buf) != 0 {
		t.Error("colour or a width for a buffer")
	}
	lf := logFlags{format: "console", level: "info"}
	var logs bytes.Buffer
	log, _ := lf.logger(&logs)
	log.Warn().Msg("x")
	if strings.Contains(logs.String(), "\x1b[") {
		t.Errorf("colour in a buffer: %q", logs.String())
	}
	t.Setenv("NO_COLOR", "1")
	if colorWanted(tty) {
		t.Error("colour on a terminal with NO_COLOR set")
	}
}
