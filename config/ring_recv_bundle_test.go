package config

import (
	"strings"
	"testing"
)

// ring.recv.bundle defaults to false (one buffer per receive completion, as
// before the key) and parses as a boolean.
func TestRingRecvBundle(t *testing.T) {
	if Default().RingRecvBundle {
		t.Fatal("ring.recv.bundle defaults to true; bundled receives are opt-in")
	}
	c, _ := parse(t, "ring.recv.bundle=true\n")
	if !c.RingRecvBundle {
		t.Fatal("ring.recv.bundle=true not applied")
	}
	if _, _, err := Parse(strings.NewReader("ring.recv.bundle=sometimes\n"), "test.properties"); err == nil {
		t.Fatal("ring.recv.bundle=sometimes accepted")
	}
}
