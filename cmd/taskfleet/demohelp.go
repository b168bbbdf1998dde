package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/task"
)

// printDemoAccess tells how to reach the demo's API: without a token (or
// how to send the one it has) and the names of its remotes, which the
// README's demo commands use.
func printDemoAccess(w io.Writer, cfg *config.Config) {
	if len(cfg.APITokens) == 0 {
		fmt.Fprintf(w, "No API token: the demo's API listens on loopback only and needs no Authorization header.\n")
	} else {
		t := cfg.APITokens[0]
		secret := "SECRET"
		if t.SecretFile != "" {
			secret = "$(cat " + t.SecretFile + ")"
		}
		fmt.Fprintf(w, "API token %q: curl -H \"Authorization: Bearer %s\" ...; the CLI reads it from TASKFLEET_TOKEN.\n", t.ID, secret)
	}
	var pve, pbs []string
	for _, r := range cfg.Remotes {
		if r.Type == task.PBS {
			pbs = append(pbs, r.ID)
		} else {
			pve = append(pve, r.ID)
		}
	}
	var parts []string
	if len(pve) > 0 {
		parts = append(parts, fmt.Sprintf("PVE clusters %s (nodes %s-n1, ...)", span(pve), pve[0]))
	}
	if len(pbs) > 0 {
		parts = append(parts, "Proxmox Backup Servers "+span(pbs))
	}
	fmt.Fprintf(w, "Remotes: %s. The README's demo commands work as they are.\n\n", strings.Join(parts, "; "))
}

// span is "a", "a, b" or "a ... z".
func span(ids []string) string {
	switch len(ids) {
	case 1:
		return ids[0]
	case 2:
		return ids[0] + ", " + ids[1]
	}
	return ids[0] + " ... " + ids[len(ids)-1]
}
