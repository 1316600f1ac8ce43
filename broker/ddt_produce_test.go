package broker

import (
	"fmt"
	"strconv"
	"time"

	"github.com/cockroachdb/datadriven"
)

// init-producer name [v=N]: InitProducerId for an idempotent producer; the
// script refers to the id it returns by name.
func (r *ddBroker) handleInitProducer(d *datadriven.TestData) string {
	name := r.pos(d, 0)
	resp := r.conn.initProducerID(int16(r.intArg(d, "v", 4)), nil)
	if resp.ErrorCode != 0 {
		return fmt.Sprintf("%s: %s", name, ddCode(resp.ErrorCode))
	}
	for n, pid := range r.producers {
		if pid == resp.ProducerID {
			d.Fatalf(r.t, "producer id of %s handed out again to %s", n, name)
		}
	}
	r.producers[name] = resp.ProducerID
	return fmt.Sprintf("%s: epoch=%d", name, resp.ProducerEpoch)
}

// produce [producer=name] [epoch=N] [seq=N] [n=N] [topic=T] [p=N]: one
// batch of n records at acks=all, Produce v9. Without producer the batch is
// not idempotent. Prints the partition's answer and the high watermark.
func (r *ddBroker) handleProduce(d *datadriven.TestData) string {
	topic, part := r.strArg(d, "topic", "t"), int32(r.intArg(d, "p", 0))
	n := int(r.intArg(d, "n", 1))
	pid, epoch, seq := int64(-1), int16(-1), int32(-1)
	if name := r.strArg(d, "producer", ""); name != "" {
		var ok bool
		if pid, ok = r.producers[name]; !ok {
			// Never initialised: an id the broker never handed out.
			r.unknown++
			pid = 1<<40 + r.unknown
			r.producers[name] = pid
		}
		epoch, seq = int16(r.intArg(d, "epoch", 0)), int32(r.intArg(d, "seq", 0))
	}
	values := make([][]byte, n)
	for i := range values {
		values[i] = []byte("v" + strconv.Itoa(i))
	}
	got := r.conn.produceRaw(9, topic, part, prodBatch(pid, epoch, seq, time.Now().UnixMilli(), values...))
	out := ddCode(got.ErrorCode)
	if got.ErrorCode == 0 {
		out += fmt.Sprintf(" base=%d log-start=%d", got.BaseOffset, got.LogStartOffset)
	}
	if tp := r.tb.Reg.Topic(topic); tp != nil && int(part) < len(tp.Partitions) {
		out += fmt.Sprintf(" hw=%d", tp.Partitions[part].Log.HighWatermark())
	}
	return out
}
