package metadata

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
)

// Records returns records that rebuild the image from an empty one: a
// metadata snapshot (the raft snapshot of issue 15's quorum, and the first
// snapshot of a single node that joins a quorum). The order is Kafka's
// snapshot order: features, brokers, topics with their partitions, configs,
// client quotas, the producer id block, then SCRAM credentials and ACLs.
// Applying them with ApplyAll to the zero Image gives an image equal to im
// (TestSnapshotRecordsRebuildImage).
func (im Image) Records() []Record {
	var out []Record
	for _, name := range slices.Sorted(maps.Keys(im.features)) {
		out = append(out, &FeatureLevelRecord{Name: name, FeatureLevel: im.features[name]})
	}
	for _, b := range im.Brokers() {
		out = append(out, &RegisterBrokerRecord{Ver: 1, BrokerID: b.ID, IncarnationID: b.IncarnationID, BrokerEpoch: b.Epoch,
			Endpoints: slices.Clone(b.Endpoints), Rack: b.Rack, Fenced: b.Fenced, InControlledShutdown: b.InControlledShutdown})
	}
	for _, t := range im.Topics() {
		out = append(out, &TopicRecord{Name: t.Name, TopicID: t.ID})
		for _, id := range slices.Sorted(maps.Keys(t.Partitions)) {
			p := t.Partitions[id]
			rec := &PartitionRecord{PartitionID: id, TopicID: t.ID,
				Replicas: slices.Clone(p.Replicas), ISR: slices.Clone(p.ISR),
				RemovingReplicas: slices.Clone(p.RemovingReplicas), AddingReplicas: slices.Clone(p.AddingReplicas),
				Leader: p.Leader, LeaderRecoveryState: p.LeaderRecoveryState, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch}
			if p.ELR != nil || p.LastKnownELR != nil {
				// Version 2 only when needed: see PartitionChangeRecord.
				rec.Ver, rec.EligibleLeaderReplicas, rec.LastKnownELR = 2, slices.Clone(p.ELR), slices.Clone(p.LastKnownELR)
			}
			out = append(out, rec)
		}
	}
	res := slices.SortedFunc(maps.Keys(im.configs), func(a, b ConfigResource) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name))
	})
	for _, r := range res {
		cfg := im.configs[r]
		for _, k := range slices.Sorted(maps.Keys(cfg)) {
			v := cfg[k]
			out = append(out, &ConfigRecord{ResourceType: r.Type, ResourceName: r.Name, Name: k, Value: &v})
		}
	}
	for _, c := range im.quotas.Changes() {
		out = append(out, QuotaRecord(c))
	}
	if im.producerIDsEnd > 0 {
		out = append(out, &ProducerIDsRecord{BrokerID: -1, BrokerEpoch: -1, ProducerIDsEnd: im.producerIDsEnd})
	}
	return im.appendSecurityRecords(out) // security_records.go
}

// EncodeBatch appends records as one batch: an unsigned varint count, then
// each record's framed bytes (Encode) behind an unsigned varint length.
// This is the payload of one metadata quorum entry.
func EncodeBatch(dst []byte, recs []Record) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(recs)))
	var one []byte
	for _, r := range recs {
		one = Encode(one[:0], r)
		dst = binary.AppendUvarint(dst, uint64(len(one)))
		dst = append(dst, one...)
	}
	return dst
}

// DecodeBatch decodes an EncodeBatch payload that is exactly b. It is
// bounded: a count is not trusted past the bytes that could hold it (each
// record takes at least 4 bytes), and malformed input is an error.
func DecodeBatch(b []byte) ([]Record, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, fmt.Errorf("%w: batch count", ErrMalformed)
	}
	b = b[k:]
	if n > uint64(len(b))/4 {
		return nil, fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrMalformed, n, len(b))
	}
	out := make([]Record, 0, n)
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, fmt.Errorf("%w: record %d length", ErrMalformed, i)
		}
		rec, err := Decode(b[k : k+int(l)])
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		out = append(out, rec)
		b = b[k+int(l):]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after the batch", ErrMalformed, len(b))
	}
	return out, nil
}
