package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is taskfleet's version; a release build sets it with
// -ldflags "-X main.version=v1.2.3". Otherwise the module version of the
// build (a tagged "go install") or "devel".
var version = ""

// buildInfo is what taskfleet version prints.
type buildInfo struct {
	Version, Commit, Time, GoVersion, Platform string
	Modified                                   bool
}

// readBuildInfo reads the version, the commit (from the VCS stamp Go
// writes into binaries built in a checkout) and the Go version.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		b.GoVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	return b
}

// printVersion is the version command (also --version).
func printVersion(w io.Writer) int {
	b := readBuildInfo()
	commit := "unknown (built without VCS information, e.g. go run or go test)"
	if b.Commit != "" {
		commit = b.Commit
		if b.Modified {
			commit += " (modified)"
		}
		if b.Time != "" {
			commit += ", " + b.Time
		}
	}
	fmt.Fprintf(w, "taskfleet %s\ncommit  %s\ngo      %s %s\n", b.Version, commit, b.GoVersion, b.Platform)
	return exitOK
}
