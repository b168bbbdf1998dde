package actors

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/metrics"
	"github.com/taskfleet/taskfleet/proxmox"
)

// newClient builds a remote's client from its configuration: its own
// transport and connection pool, the remote's cap, and the shared budget.
//
// hook is the pollers' test knob: when set, it is called with stageDecode
// before each answer is decoded, and may panic.
func newClient(r config.Remote, p config.Polling, budget proxmox.Limiter, dial func(ctx context.Context, network, addr string) (net.Conn, error), m *metrics.Metrics, hook func(remote string, msg any)) (remoteClient, error) {
	cfg := proxmox.Config{
		Remote:         r.ID,
		Kind:           r.Type,
		TokenID:        r.TokenID,
		TokenSecret:    r.TokenSecret.Reveal(),
		MaxConns:       r.MaxConnections,
		RequestTimeout: p.RequestTimeout,
		DialContext:    dial,
		Limiter:        budget,
		ObserveRequest: func(d time.Duration) { m.ObserveRequest(r.ID, d) },
	}
	if hook != nil {
		cfg.BeforeDecode = func(string) { hook(r.ID, stageDecode) }
	}
	for _, e := range r.Endpoints {
		cfg.Endpoints = append(cfg.Endpoints, proxmox.Endpoint{URL: e.URL, Fingerprint: e.Fingerprint})
	}
	if r.CAFile != "" {
		pem, err := os.ReadFile(r.CAFile)
		if err != nil {
			return nil, fmt.Errorf("remote %s: read ca_file: %w", r.ID, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("remote %s: ca_file %s holds no PEM certificate", r.ID, r.CAFile)
		}
		cfg.RootCAs = pool
	}
	c, err := proxmox.New(cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}
