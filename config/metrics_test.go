package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestListenMetrics: listen.metrics is off unless set, read when set, and
// checked like the other listeners.
func TestListenMetrics(t *testing.T) {
	t.Parallel()
	src := strings.Replace(base, "[user.anna]", "[listen]\nmetrics = \"127.0.0.1:2090\"\n[user.anna]", 1)
	cfg, err := Parse(filepath.Join(t.TempDir(), "c.toml"), []byte(src))
	if err != nil || cfg.Listen.Metrics != "127.0.0.1:2090" {
		t.Fatalf("metrics = %q (%v), want 127.0.0.1:2090", cfg.Listen.Metrics, err)
	}
	bad := strings.Replace(base, "[user.anna]", "[listen]\nmetrics = \"2090\"\n[user.anna]", 1)
	_, err = Parse(filepath.Join(t.TempDir(), "c.toml"), []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "listen.metrics") {
		t.Fatalf("metrics = \"2090\" accepted or not named: %v", err)
	}
}
