package broker

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/storage"
)

// TestPreviousBrokerEpoch: the broker epoch set before Close is what every
// log dir's clean-shutdown marker holds and what the next open reports;
// a log dir without a marker (an unclean shutdown) or with another epoch
// makes it -1, as Kafka's readBrokerEpochFromCleanShutdownFiles.
func TestPreviousBrokerEpoch(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	open := func() *Registry {
		t.Helper()
		r, err := OpenRegistry(RegistryOptions{LogDirs: dirs, Logger: zaptest.NewLogger(t), Config: config.Default()})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := open()
	if got := r.PreviousBrokerEpoch(); got != -1 {
		t.Fatalf("fresh dirs: previous epoch %d", got)
	}
	r.SetBrokerEpoch(7)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = open()
	if got := r.PreviousBrokerEpoch(); got != 7 {
		t.Fatalf("after a clean shutdown: previous epoch %d, want 7", got)
	}
	r.SetBrokerEpoch(9)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash of one dir: its marker is gone.
	if err := os.Remove(filepath.Join(dirs[1], storage.CleanShutdownFile)); err != nil {
		t.Fatal(err)
	}
	r = open()
	defer r.Close()
	if got := r.PreviousBrokerEpoch(); got != -1 {
		t.Fatalf("one dir without a marker: previous epoch %d, want -1", got)
	}
}
