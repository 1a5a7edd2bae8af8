package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/netconform/netconform/internal/capfilter"
)

func TestFilterKeepsOnlyHeldCapabilities(t *testing.T) {
	held, err := capfilter.Bounding()
	if err != nil {
		t.Fatal(err)
	}
	missing := capfilter.Missing(held)
	if len(missing) == 0 {
		t.Skip("this host's bounding set holds every known capability; nothing for the shim to drop here")
	}
	dir := t.TempDir()
	all := []string{"CAP_CHOWN", missing[0], "CAP_NET_ADMIN"}
	spec := map[string]any{"ociVersion": "1.0.2", "process": map[string]any{"capabilities": map[string]any{
		"bounding": all, "effective": all, "permitted": all}}, "root": map[string]any{"path": "rootfs"}}
	data, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := filterFor([]string{"--root", "/run/x", "--log", "/tmp/log", "create", "--bundle", dir, "id1"}); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(filepath.Join(dir, "config.json"))
	var got struct {
		Process struct{ Capabilities map[string][]string } `json:"process"`
		Root    struct{ Path string }                      `json:"root"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	for set, caps := range got.Process.Capabilities {
		if len(caps) != 2 || caps[0] != "CAP_CHOWN" || caps[1] != "CAP_NET_ADMIN" {
			t.Errorf("%s = %v, want [CAP_CHOWN CAP_NET_ADMIN] (dropped %s)", set, caps, missing[0])
		}
	}
	if got.Root.Path != "rootfs" {
		t.Errorf("other fields must survive, root.path = %q", got.Root.Path)
	}
}
