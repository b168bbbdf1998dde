package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/api"
	"github.com/taskfleet/taskfleet/backups"
)

// pathBackups is the backup overview's endpoint.
const pathBackups = api.PathBackups

// backupsFlags is "taskfleet backups": the overview as a table, failing
// and stale first (the API's order), or its JSON.
func backupsFlags(fs *flag.FlagSet) func(context.Context, *client, io.Writer) error {
	remote := fs.String("remote", "", "only guests and jobs of this remote `id`")
	var status stringList
	fs.Var(&status, "status", "only rows of these `classes`: ok, warning, error, unknown, none (never backed up); repeat or comma separate")
	older := fs.String("older-than", "", "only guests whose last good backup is older than this `duration` (26h), or that have none")
	jobs := fs.Bool("jobs", true, "also print the PBS datastore jobs")
	return func(ctx context.Context, c *client, out io.Writer) error {
		p := url.Values{}
		if *remote != "" {
			p.Set("remote", *remote)
		}
		if len(status) > 0 {
			p.Set("status", strings.Join(status, ","))
		}
		if *older != "" {
			if _, err := time.ParseDuration(*older); err != nil {
				return usageErr{fmt.Errorf("--older-than: want a duration such as 26h or 90m: %w", err)}
			}
			p.Set("older_than", *older)
		}
		a, err := c.call(ctx, http.MethodGet, pathBackups, p)
		if err != nil {
			return err
		}
		if c.json {
			return printJSON(out, a.Data)
		}
		var ans api.BackupsAnswer
		if err := json.Unmarshal(a.Data, &ans); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		return printBackups(out, &ans, *jobs)
	}
}

// printBackups prints the guests' table, the jobs' table and a summary.
func printBackups(out io.Writer, a *api.BackupsAnswer, jobs bool) error {
	now := time.Unix(a.Now, 0)
	ago := func(t int64) string {
		if t == 0 {
			return "never"
		}
		return shortDuration(now.Unix()-t) + " ago"
	}
	color := colorWanted(out)
	width := terminalWidth(out)
	t := &table{headers: []string{"REMOTE", "NODE", "VMID", "TYPE", "NAME", "STATUS", "LAST BACKUP", "LAST GOOD", "STORAGE", "LAST STATUS"},
		flex: 9, cellColor: func(col int, text string) string {
			if col == 5 {
				return backupColor(text)
			}
			return ""
		}}
	failing, stale := 0, 0
	for _, g := range a.Guests {
		name := g.Name
		if g.Namespace != "" {
			name = g.Namespace
		}
		last := g.LastStatus
		if last == "" {
			last = "-"
		}
		switch g.Class {
		case backups.ClassError, backups.ClassUnknown:
			failing++
		case backups.ClassNone:
			stale++
		}
		t.add("", g.Remote, dashIfEmpty(g.Node), g.VMID, dashIfEmpty(g.Type), dashIfEmpty(name), g.Class, ago(g.LastStart), ago(g.LastOK), dashIfEmpty(g.Storage), last)
	}
	if err := t.write(out, color, width); err != nil {
		return err
	}
	if jobs && len(a.Jobs) > 0 {
		fmt.Fprintln(out)
		jt := &table{headers: []string{"REMOTE", "DATASTORE", "JOB", "ID", "STATUS", "SUCCEEDED", "LAST RUN", "LAST GOOD", "LAST STATUS"},
			flex: 8, cellColor: func(col int, text string) string {
				if col == 4 {
					return backupColor(text)
				}
				return ""
			}}
		for _, j := range a.Jobs {
			ok := "yes"
			if !j.Succeeded {
				ok = "no"
			}
			jt.add("", j.Remote, dashIfEmpty(j.Datastore), j.Type, dashIfEmpty(j.ID), j.Class, ok, ago(j.LastStart), ago(j.LastOK), j.LastStatus)
		}
		if err := jt.write(out, color, width); err != nil {
			return err
		}
	}
	pending := 0
	for _, n := range a.PendingLogs {
		pending += n
	}
	_, err := fmt.Fprintf(out, "%s guests, %s failing, %s never backed up; %s backup job logs not read yet\n",
		thousands(len(a.Guests)), thousands(failing), thousands(stale), thousands(pending))
	return err
}

// backupColor colours a backup's status class.
func backupColor(class string) string {
	switch class {
	case backups.ClassError, backups.ClassUnknown, backups.ClassNone:
		return ansiRed
	case backups.ClassWarning:
		return ansiYellow
	case backups.ClassOK:
		return ansiGreen
	}
	return ""
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
