package group

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// persisted: the records written through Persist since the last call.
func (h *harness) handlePersisted() {
	for _, r := range h.records[h.newSince:] {
		fmt.Fprintln(h.out, describeRecord(r.key, r.value))
	}
	h.newSince = len(h.records)
}

// restart: reload a fresh coordinator from every persisted record.
func (h *harness) handleRestart(t *testing.T) {
	h.reset()
	for _, r := range h.records {
		if err := h.c.Load(h.now, r.key, r.value); err != nil {
			t.Fatal(err)
		}
	}
	h.c.FinishLoad(h.now)
	h.newSince = len(h.records)
}

func describeRecord(key, value []byte) string {
	switch int16(key[0])<<8 | int16(key[1]) {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		k.ReadFrom(key)
		if value == nil {
			return fmt.Sprintf("offset %s %s-%d tombstone", k.Group, k.Topic, k.Partition)
		}
		var v kmsg.OffsetCommitValue
		v.ReadFrom(value)
		return fmt.Sprintf("offset %s %s-%d=%d", k.Group, k.Topic, k.Partition, v.Offset)
	default:
		var k kmsg.GroupMetadataKey
		k.ReadFrom(key)
		if value == nil {
			return fmt.Sprintf("group %s tombstone", k.Group)
		}
		var v kmsg.GroupMetadataValue
		v.ReadFrom(value)
		var ms []string
		for _, m := range v.Members {
			ms = append(ms, fmt.Sprintf("%s:%q", m.MemberID, m.Assignment))
		}
		return fmt.Sprintf("group %s type=%s gen=%d proto=%s leader=%s members=[%s]", k.Group, v.ProtocolType, v.Generation,
			deref(v.Protocol), deref(v.Leader), strings.Join(ms, " "))
	}
}
