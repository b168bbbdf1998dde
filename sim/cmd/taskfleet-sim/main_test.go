package main

import (
	"io"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	if _, err := parseFlags(nil, io.Discard); err == nil {
		t.Error("no -out accepted")
	}
	o, err := parseFlags([]string{"-out", "d", "-pve", "3", "-pbs", "0", "-nodes", "5", "-history", "24h", "-seed", "9", "-listen", "127.0.0.1:9999"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.out != "d" || o.cfg.PVEClusters != 3 || o.cfg.PBSServers != 0 || o.cfg.NodesPerCluster != 5 || o.cfg.History != 24*time.Hour || o.cfg.Seed != 9 || o.listen != "127.0.0.1:9999" {
		t.Errorf("options %+v", o)
	}
	if _, err := parseFlags([]string{"-out", "d", "-bogus"}, io.Discard); err == nil {
		t.Error("unknown flag accepted")
	}
}
