package config

import (
	"strings"
	"testing"
)

// ring.defer.taskrun defaults to true (the rings' setup before the key
// existed) and parses as a boolean.
func TestRingDeferTaskrun(t *testing.T) {
	if !Default().RingDeferTaskrun {
		t.Fatal("ring.defer.taskrun defaults to false; the rings always had DEFER_TASKRUN")
	}
	c, _ := parse(t, "ring.defer.taskrun=false\n")
	if c.RingDeferTaskrun {
		t.Fatal("ring.defer.taskrun=false not applied")
	}
	if _, _, err := Parse(strings.NewReader("ring.defer.taskrun=maybe\n"), "test.properties"); err == nil {
		t.Fatal("ring.defer.taskrun=maybe accepted")
	}
}
