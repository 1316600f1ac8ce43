package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// alterPartitionVersion is the AlterPartition version a node sends: v3
// (topic ids, and each ISR member's broker epoch in NewEpochISR), as a
// Kafka broker of a KRaft cluster does.
const alterPartitionVersion = 3

// AlterPartition sends an AlterPartition (key 56) for partitions this node
// leads to the active controller, stamped with this node's broker id and
// epoch (its latest registration), and returns the answer once this node
// has applied the records the controller wrote for it, so that its image
// shows the new ISR and partition epoch before the caller acts on the
// answer. This is the path a partition leader's ISR changes take
// (Kafka's AlterPartitionManager), over the cluster transport like the
// admin requests Forward carries; Kafka too serves AlterPartition only on
// controller listeners, so brokers do not list it in ApiVersions.
//
// topics name partitions by topic id; from v3 each ISR member goes in
// NewEpochISR (with its broker epoch, or -1 to skip that check). The call
// retries, with backoff and until ctx ends, while this node is not
// registered yet, there is no controller, the call fails, or the answer
// is a top-level NOT_CONTROLLER. Other answers are returned as they are:
// STALE_BROKER_EPOCH at the top, and per partition the codes
// controller.AlterPartition gives.
func (n *Node) AlterPartition(ctx context.Context, topics []kmsg.AlterPartitionRequestTopic) (*kmsg.AlterPartitionResponse, error) {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version = alterPartitionVersion
	req.BrokerID = n.cfg.NodeID
	req.Topics = topics
	for attempt := 0; ; attempt++ {
		req.BrokerEpoch = n.brokerEpoch.Load()
		var err error
		if req.BrokerEpoch >= 0 {
			var resp kmsg.Response
			var index uint64
			resp, index, err = n.call(ctx, req)
			if err == nil {
				r := resp.(*kmsg.AlterPartitionResponse)
				if r.ErrorCode != kerr.NotController.Code {
					return r, n.waitApplied(ctx, index)
				}
				err = kerr.NotController
			}
		} else {
			err = errors.New("not registered with the controller yet")
		}
		select {
		case <-time.After(backoff(attempt)):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-n.closing:
			return nil, errClosed
		}
	}
}
