package metadata

import (
	"bytes"
	"math"
	"testing"
)

// TestClientQuotaRecordBytes pins ClientQuotaRecord (flexible v0) to the
// layout of Kafka's generated class: entity array of (type, nullable
// name, tags), key, float64, remove, tags.
func TestClientQuotaRecordBytes(t *testing.T) {
	got := Encode(nil, &ClientQuotaRecord{Entity: []QuotaEntityData{{Type: "user", Name: strp("a")}, {Type: "ip"}},
		QuotaKey: "k", Value: 2})
	want := []byte{1, 14, 0, 3, 5, 'u', 's', 'e', 'r', 2, 'a', 0, 3, 'i', 'p', 0, 0, 2, 'k'}
	want = append(want, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x\nwant % x", got, want)
	}
}

func TestClientQuotaImage(t *testing.T) {
	var im Image
	set := &ClientQuotaRecord{Entity: []QuotaEntityData{{Type: "user", Name: strp("alice")}}, QuotaKey: "producer_byte_rate", Value: 1024}
	im, d, err := im.Apply(set)
	if err != nil || !d.ChangedQuotas {
		t.Fatalf("apply: %v, %+v", err, d)
	}
	if v, _, ok := im.Quotas().Lookup("producer_byte_rate", "alice", "any"); !ok || v != 1024 {
		t.Fatalf("lookup after apply: %v %v", v, ok)
	}
	rebuilt, _, err := Image{}.ApplyAll(im.Records())
	if err != nil || rebuilt.Quotas().Len() != 1 {
		t.Fatalf("snapshot rebuild: %v, %d entities", err, rebuilt.Quotas().Len())
	}
	for _, bad := range []*ClientQuotaRecord{
		{Entity: []QuotaEntityData{{Type: "group", Name: strp("g")}}, QuotaKey: "producer_byte_rate", Value: 1},
		{Entity: []QuotaEntityData{{Type: "user", Name: strp("a")}}, QuotaKey: "producer_byte_rate", Value: math.NaN()},
		{Entity: []QuotaEntityData{{Type: "user", Name: strp("a")}}, QuotaKey: "no_such_key", Value: 1},
	} {
		if _, _, err := im.Apply(bad); err == nil {
			t.Errorf("applied %+v", bad)
		}
	}
	rm := &ClientQuotaRecord{Entity: set.Entity, QuotaKey: "producer_byte_rate", Remove: true}
	if im, _, err = im.Apply(rm); err != nil || im.Quotas().Len() != 0 {
		t.Fatalf("remove: %v, %d entities left", err, im.Quotas().Len())
	}
}
