package config

// Metrics is the [metrics] table: optional Prometheus metrics.
type Metrics struct {
	// PerGuest exports the time of each guest's last successful backup
	// and last backup attempt (two series per guest).
	PerGuest bool
	// MaxGuests bounds the guests PerGuest exports; past it, the guests
	// with the most recent successful backup are left out and counted.
	MaxGuests int
}

// Limits of [metrics].
const (
	// DefaultMaxGuests is metrics.max_guests when the file does not set it;
	// also the bound of metrics.NewGuestBackups when given none.
	DefaultMaxGuests = 20000
	maxMaxGuests     = 1_000_000
)

// rawMetrics mirrors [metrics]; see rawConfig.
type rawMetrics struct {
	PerGuest  any `toml:"per_guest"`
	MaxGuests any `toml:"max_guests"`
}

// defaultMetrics is the [metrics] table of Default.
func defaultMetrics() Metrics { return Metrics{MaxGuests: DefaultMaxGuests} }

// metrics builds and checks the [metrics] table.
func (b *builder) metrics(raw *rawMetrics, m *Metrics) {
	b.boolean(raw.PerGuest, "metrics.per_guest", &m.PerGuest)
	if b.integer(raw.MaxGuests, "metrics.max_guests", &m.MaxGuests) && (m.MaxGuests < 1 || m.MaxGuests > maxMaxGuests) {
		b.ps.add("metrics.max_guests", "want 1 to %d", maxMaxGuests)
	}
}
