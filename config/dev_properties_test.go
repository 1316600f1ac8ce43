package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDevProperties: `make run` loads config/dev.properties, which parses
// cleanly and starts a first consumer group without the 3 s initial
// rebalance delay (every first join waited 3 s under make run), while the
// production config keeps Kafka's default.
func TestDevProperties(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "./$(BIN) --config config/dev.properties") {
		t.Errorf("the Makefile's run target does not load config/dev.properties")
	}
	c, warns, err := Load("dev.properties")
	if err != nil || len(warns) > 0 {
		t.Fatalf("dev.properties: %v %v", err, warns)
	}
	if c.GroupInitialRebalanceDelayMs != 0 {
		t.Errorf("dev group.initial.rebalance.delay.ms = %d, want 0", c.GroupInitialRebalanceDelayMs)
	}
	prod, _, err := Load(filepath.Join("..", "scripts", "server.properties"))
	if err != nil {
		t.Fatal(err)
	}
	if prod.GroupInitialRebalanceDelayMs != 3000 || Default().GroupInitialRebalanceDelayMs != 3000 {
		t.Errorf("production and built-in group.initial.rebalance.delay.ms = %d, %d, want Kafka's 3000",
			prod.GroupInitialRebalanceDelayMs, Default().GroupInitialRebalanceDelayMs)
	}
}
