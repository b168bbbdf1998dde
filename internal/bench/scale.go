package bench

import (
	"context"
	"time"
)

// ScaleConfig is the scale section: one large fleet, one large cap.
type ScaleConfig struct {
	Remotes   int           `json:"remotes"`
	GlobalCap int           `json:"global_cap"`
	RemoteCap int           `json:"remote_cap"`
	RTT       time.Duration `json:"rtt_ns"`
	// SteadySweeps after the first one; 0 measures the first only.
	SteadySweeps int `json:"steady_sweeps"`
}

// runScale measures the first sweep and cfg.SteadySweeps steady ones of cfg.Remotes
// remotes of fl (served in memory: 10,000 remotes of 3 nodes over loopback
// would need 30,000 listening sockets, beyond RLIMIT_NOFILE here).
func runScale(ctx context.Context, fl *simFleet, cfg ScaleConfig, profileDir, parent string) (SweepResult, error) {
	return runSweepCase(ctx, fl, SweepCase{Remotes: cfg.Remotes, GlobalCap: cfg.GlobalCap, Network: fl.cfg.Network},
		SweepConfig{RemoteCap: cfg.RemoteCap, RTT: cfg.RTT, SteadySweeps: cfg.SteadySweeps, ProfileDir: profileDir}, parent)
}
