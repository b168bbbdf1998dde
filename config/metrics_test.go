package config

import (
	"slices"
	"testing"
)

func TestMetricsSection(t *testing.T) {
	cfg, err := Parse([]byte(base), "taskfleet.toml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if want := (Metrics{MaxGuests: DefaultMaxGuests}); cfg.Metrics != want {
		t.Errorf("[metrics] by default = %+v, want %+v", cfg.Metrics, want)
	}
	if d := Default(); d.Metrics != cfg.Metrics {
		t.Errorf("Default().Metrics = %+v, want %+v", d.Metrics, cfg.Metrics)
	}
	cfg, err = Parse([]byte(base+"\n[metrics]\nper_guest = true\nmax_guests = 50000\n"), "taskfleet.toml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if want := (Metrics{PerGuest: true, MaxGuests: 50000}); cfg.Metrics != want {
		t.Errorf("[metrics] = %+v, want %+v", cfg.Metrics, want)
	}
}

func TestMetricsProblems(t *testing.T) {
	cases := []struct {
		name, add string
		want      []string
	}{
		{
			name: "wrong types",
			add:  "[metrics]\nper_guest = \"yes\"\nmax_guests = \"many\"\n",
			want: []string{
				`taskfleet.toml:15: metrics.per_guest: want true or false, not a string`,
				`taskfleet.toml:16: metrics.max_guests: want an integer, not a string`,
			},
		},
		{
			name: "out of range",
			add:  "[metrics]\nmax_guests = 0\n",
			want: []string{`taskfleet.toml:15: metrics.max_guests: want 1 to 1000000`},
		},
		{
			name: "too many",
			add:  "[metrics]\nper_guest = true\nmax_guests = 1000001\n",
			want: []string{`taskfleet.toml:16: metrics.max_guests: want 1 to 1000000`},
		},
		{
			name: "unknown key",
			add:  "[metrics]\nper_guest = true\nper_node = true\n",
			want: []string{`taskfleet.toml:16: metrics.per_node: unknown key`},
		},
		{
			name: "not a table",
			add:  "metrics = true\n",
			want: []string{`taskfleet.toml:1: metrics: want a table ([metrics])`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := base + "\n" + c.add
			if c.name == "not a table" {
				// A top-level key after [[remote]] would belong to the
				// remote: put it first.
				src = c.add + base
			}
			got := problemsOf(t, src, nil)
			if !slices.Equal(got, c.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, c.want)
			}
		})
	}
}
