// Temporary runner for the full benchmark (deleted before hand-off).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/taskfleet/taskfleet/internal/bench"
)

func main() {
	only := flag.String("only", "", "sections")
	js := flag.String("json", "", "write JSON here")
	sweep := flag.String("sweep", "", "NxC,...")
	prof := flag.String("cpuprofile", "", "")
	flag.Parse()
	cfg := bench.Defaults()
	if *only != "" {
		cfg.Sections = strings.Split(*only, ",")
	}
	cfg.Progress = os.Stderr
	if *sweep != "" {
		cfg.Sweep.Cases = nil
		for _, it := range strings.Split(*sweep, ",") {
			var n, c int
			fmt.Sscanf(it, "%dx%d", &n, &c)
			cfg.Sweep.Cases = append(cfg.Sweep.Cases, bench.SweepCase{Remotes: n, GlobalCap: c, Network: bench.NetworkMemory})
		}
	}
	cfg.Sweep.ProfileDir = *prof
	r, err := bench.Run(context.Background(), cfg)
	if r != nil {
		r.Command = "go run ./cmd/taskfleet bench"
		r.WriteText(os.Stdout)
		if *js != "" {
			f, _ := os.Create(*js)
			r.WriteJSON(f)
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
