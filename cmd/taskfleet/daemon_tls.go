package main

import (
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfleet/taskfleet/api"
)

// setTLS makes the daemon serve HTTPS with t (nil: plain HTTP on an
// address that is loopback or not, as serve decided), logs how
// the API speaks and prints the certificate's fingerprint to out, for
// clients to pin. Plain HTTP on an address that is not loopback (allowed
// by server.insecure_http) is logged as a warning.
func (d *daemon) setTLS(t *apiTLS, loopback bool, out io.Writer) {
	d.tls = t
	log := d.log.With().Str("component", "api").Logger()
	addr := d.listener.Addr()
	if t == nil {
		if !loopback {
			log.Warn().Str("listen", addr.String()).Msg("server.insecure_http = true: the API speaks plain HTTP on an address that is not loopback; API tokens cross the network in clear")
		}
		return
	}
	t.describe(log)
	fmt.Fprintf(out, "taskfleet API: https://%s\nCertificate fingerprint (SHA-256): %s\n", addr, t.Fingerprint())
}

// reloadTLS re-reads the configured certificate and key (at every
// reload: SIGHUP or POST /api2/json/reload); a failure keeps the current
// certificate.
func (d *daemon) reloadTLS(log zerolog.Logger) {
	if d.tls == nil || d.tls.certFile == "" {
		return
	}
	if err := d.tls.reload(); err != nil {
		log.Error().Err(err).Msg("certificate not reloaded: keeping the current one")
		return
	}
	log.Info().Str("tls_fingerprint", d.tls.Fingerprint()).Str("tls_cert", d.tls.certFile).Msg("certificate reloaded")
}

// registerEdgeMetrics exports the API edge's refusals and requests in
// flight.
func registerEdgeMetrics(reg prometheus.Registerer, e *api.Edge) {
	for reason := range e.Refused() {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "taskfleet_api_requests_refused_total",
			Help:        "API requests refused at the edge (in_flight: 503, uri_too_long: 414, header_too_large: 431) or failed with 500 (internal).",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 { return float64(e.Refused()[reason]) }))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "taskfleet_api_requests_in_flight",
		Help: "API requests being served (probes aside).",
	}, func() float64 { return float64(e.InFlight()) }))
}
