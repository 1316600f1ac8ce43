package cluster

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/config"
)

// TestStandaloneRefusesRebootstrapAfterLogLoss: a standalone node of a
// dynamic quorum records that it is a member once its log holds the
// quorum; restarted with the log intact it starts as before; restarted
// with controller.quorum.standalone still set and its metadata log gone,
// it refuses to bootstrap a new quorum with an error naming the log and
// the marker, and leaves the dir exactly as it found it.
func TestStandaloneRefusesRebootstrapAfterLogLoss(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	eps := []config.Voter{{ID: 1, Host: "127.0.0.1", Port: port}}
	dirs := []string{t.TempDir()}
	marker := filepath.Join(dirs[0], memberMarkerName)
	logDir := filepath.Join(dirs[0], MetadataLogName)

	// A fresh dir: no marker, so the first start bootstraps.
	n := startDynamic(t, 0, eps, dirs)
	waitFor(t, "the standalone node to register its broker and note its membership", func() bool {
		_, err := os.Stat(marker)
		return n.ControllerID() == 1 && len(n.Image().Brokers()) == 1 && err == nil
	})
	closeNode(t, n)

	// The log intact: a restart with the same keys starts.
	n = startDynamic(t, 0, eps, dirs)
	waitFor(t, "the restarted node to lead again", func() bool { return n.ControllerID() == 1 && n.ctlActive() })
	closeNode(t, n)

	// The log lost: refused, nothing touched.
	if err := os.RemoveAll(logDir); err != nil {
		t.Fatal(err)
	}
	before := listDir(t, dirs[0])
	markerBefore, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	_, err = startDynamicErr(t, 0, eps, dirs)
	if err == nil || !strings.Contains(err.Error(), "refusing to bootstrap a new quorum") ||
		!strings.Contains(err.Error(), logDir) || !strings.Contains(err.Error(), marker) {
		t.Fatalf("start with the metadata log gone: %v", err)
	}
	t.Logf("refused: %v", err)
	if after := listDir(t, dirs[0]); after != before {
		t.Fatalf("the refused start changed the metadata dir: %q then %q", before, after)
	}
	if b, _ := os.ReadFile(marker); string(b) != string(markerBefore) {
		t.Fatalf("the marker changed: %q then %q", markerBefore, b)
	}

	// An emptied log dir (the directory there, no log in it) is refused too.
	if err := os.Mkdir(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := startDynamicErr(t, 0, eps, dirs); err == nil || !strings.Contains(err.Error(), "refusing to bootstrap") {
		t.Fatalf("start with an empty metadata log dir: %v", err)
	}

	// Moving the marker away is the way to form a new cluster on purpose.
	if err := os.Rename(marker, marker+".old"); err != nil {
		t.Fatal(err)
	}
	n = startDynamic(t, 0, eps, dirs)
	waitFor(t, "the node to form a new quorum", func() bool { return n.ControllerID() == 1 && n.ctlActive() })
	closeNode(t, n)
}

func closeNode(t *testing.T, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// listDir lists dir's entries recursively with their sizes, one a line.
func listDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		b.WriteString(rel)
		if !info.IsDir() {
			b.WriteString(" " + info.ModTime().String())
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
