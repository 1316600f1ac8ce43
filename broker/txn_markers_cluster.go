package broker

// Transaction markers in a cluster (issue 18): a transaction's partitions
// may be led by other brokers, and its markers must reach each leader, as
// Kafka's TransactionMarkerChannelManager sends WriteTxnMarkers to every
// partition leader. clusterMarkers splits a coordinator's marker request
// by the leader the metadata image names: the partitions led here go
// through the local data path (Broker.WriteTxnMarkers), the others in one
// WriteTxnMarkers request per leader over the brokers' client listener,
// and the answers are merged. A partition without a live leader, or whose
// leader did not answer, answers a retriable error, so the coordinator
// retries it (txnCoordinator.markersWritten) until the image names a
// leader that writes it; a deleted partition answers
// UNKNOWN_TOPIC_OR_PARTITION, which the coordinator drops, as Kafka does.
//
// The requests go through one franz-go client per broker process, created
// on first use and seeded with the live brokers' endpoints; franz-go keeps
// one connection per broker and refreshes its own view of the brokers
// from Metadata, which every broker answers from the image.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/internal/ratelog"
)

// clusterMarkers is the txnMarkerWriter of a clustered broker.
type clusterMarkers struct {
	b *Broker

	mu     sync.Mutex
	cl     *kgo.Client // nil until first used
	closed bool
}

// remoteMarkerTimeout bounds one WriteTxnMarkers to another broker (the
// receiving broker bounds its appends by markerTimeout too).
const remoteMarkerTimeout = markerTimeout + 5*time.Second

var remoteMarkerLog ratelog.Every

// WriteTxnMarkers writes req's markers where their partitions are led and
// calls done once with every partition answered.
func (m *clusterMarkers) WriteTxnMarkers(req *kmsg.WriteTxnMarkersRequest, done func(*kmsg.WriteTxnMarkersResponse)) {
	b := m.b
	self := b.opts.NodeID
	local := &kmsg.WriteTxnMarkersRequest{Version: req.Version}
	remote := map[int32]*kmsg.WriteTxnMarkersRequest{}
	// The answer for partitions that cannot be sent anywhere yet.
	unsent := &kmsg.WriteTxnMarkersResponse{Version: req.Version}
	for _, mk := range req.Markers {
		for _, t := range mk.Topics {
			for _, p := range t.Partitions {
				l := b.currentLeader(t.Topic, p)
				var dst *kmsg.WriteTxnMarkersRequest
				switch {
				case l == nil && !b.clusterTopicExists(t.Topic):
					dst = local // answers UNKNOWN_TOPIC_OR_PARTITION
				case l == nil:
					addMarkerAnswer(unsent, mk, t.Topic, p, kerr.NotLeaderForPartition.Code)
					continue
				case l.id == self:
					dst = local
				default:
					if remote[l.id] == nil {
						remote[l.id] = &kmsg.WriteTxnMarkersRequest{Version: req.Version}
					}
					dst = remote[l.id]
				}
				addMarkerPartition(dst, mk, t.Topic, p)
			}
		}
	}

	var mu sync.Mutex
	merged := &kmsg.WriteTxnMarkersResponse{Version: req.Version, Markers: unsent.Markers}
	pending := 1 + len(remote)
	finish := func(resp *kmsg.WriteTxnMarkersResponse) {
		mu.Lock()
		merged.Markers = append(merged.Markers, resp.Markers...)
		pending--
		last := pending == 0
		mu.Unlock()
		if last {
			done(merged)
		}
	}
	for id, r := range remote {
		go m.send(id, r, finish)
	}
	if len(local.Markers) == 0 {
		finish(&kmsg.WriteTxnMarkersResponse{})
		return
	}
	b.WriteTxnMarkers(local, finish)
}

// send writes r on broker id; a failure answers every partition of r with
// a retriable error.
func (m *clusterMarkers) send(id int32, r *kmsg.WriteTxnMarkersRequest, finish func(*kmsg.WriteTxnMarkersResponse)) {
	fail := func(err error) {
		if n, ok := remoteMarkerLog.Event(time.Second); ok {
			m.b.log.Warn("transaction markers to a partition leader not written; retrying", zap.Int32("broker", id),
				zap.Int64("failures_since_last_line", n), zap.Error(err))
		}
		resp := &kmsg.WriteTxnMarkersResponse{}
		for _, mk := range r.Markers {
			for _, t := range mk.Topics {
				for _, p := range t.Partitions {
					addMarkerAnswer(resp, mk, t.Topic, p, kerr.NotLeaderForPartition.Code)
				}
			}
		}
		finish(resp)
	}
	cl, err := m.client()
	if err != nil {
		fail(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), remoteMarkerTimeout)
	defer cancel()
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Markers = r.Markers
	kresp, err := cl.Broker(int(id)).Request(ctx, req)
	if err != nil {
		fail(err)
		return
	}
	resp, ok := kresp.(*kmsg.WriteTxnMarkersResponse)
	if !ok {
		fail(fmt.Errorf("unexpected response %T", kresp))
		return
	}
	finish(resp)
}

// client is the inter-broker client, created on first use from the live
// brokers of the image.
func (m *clusterMarkers) client() (*kgo.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errRegistryClosed
	}
	if m.cl != nil {
		return m.cl, nil
	}
	im := m.b.image()
	var seeds []string
	for _, br := range im.Brokers() {
		if !isLive(im, br.ID) {
			continue
		}
		if e, ok := m.b.interBrokerEndpoint(br); ok {
			seeds = append(seeds, fmt.Sprintf("%s:%d", e.Host, e.Port))
		}
	}
	if len(seeds) == 0 {
		return nil, fmt.Errorf("no live broker in the metadata image")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID(fmt.Sprintf("ringbroker-%d-txn-markers", m.b.opts.NodeID)),
		kgo.RequestRetries(0), kgo.WithLogger(nil)}
	if m.b.opts.InterBrokerDial != nil {
		opts = append(opts, kgo.Dialer(m.b.opts.InterBrokerDial))
	}
	if m.b.opts.InterBrokerSASL != nil {
		opts = append(opts, kgo.SASL(m.b.opts.InterBrokerSASL))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	m.cl = cl
	return cl, nil
}

// close closes the client; later sends fail (and are not retried: the
// coordinator is closed first).
func (m *clusterMarkers) close() {
	m.mu.Lock()
	cl := m.cl
	m.cl, m.closed = nil, true
	m.mu.Unlock()
	if cl != nil {
		cl.Close()
	}
}

// addMarkerPartition adds topic/partition of marker mk to r, keeping one
// marker per producer and one topic entry per topic.
func addMarkerPartition(r *kmsg.WriteTxnMarkersRequest, mk kmsg.WriteTxnMarkersRequestMarker, topic string, partition int32) {
	var dst *kmsg.WriteTxnMarkersRequestMarker
	for i := range r.Markers {
		x := &r.Markers[i]
		if x.ProducerID == mk.ProducerID && x.ProducerEpoch == mk.ProducerEpoch && x.Committed == mk.Committed {
			dst = x
			break
		}
	}
	if dst == nil {
		nm := kmsg.NewWriteTxnMarkersRequestMarker()
		nm.ProducerID, nm.ProducerEpoch, nm.Committed, nm.CoordinatorEpoch = mk.ProducerID, mk.ProducerEpoch, mk.Committed, mk.CoordinatorEpoch
		r.Markers = append(r.Markers, nm)
		dst = &r.Markers[len(r.Markers)-1]
	}
	if n := len(dst.Topics); n == 0 || dst.Topics[n-1].Topic != topic {
		t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		t.Topic = topic
		dst.Topics = append(dst.Topics, t)
	}
	last := &dst.Topics[len(dst.Topics)-1]
	last.Partitions = append(last.Partitions, partition)
}

// addMarkerAnswer adds code for topic/partition of marker mk to resp.
func addMarkerAnswer(resp *kmsg.WriteTxnMarkersResponse, mk kmsg.WriteTxnMarkersRequestMarker, topic string, partition int32, code int16) {
	var dst *kmsg.WriteTxnMarkersResponseMarker
	for i := range resp.Markers {
		if resp.Markers[i].ProducerID == mk.ProducerID {
			dst = &resp.Markers[i]
			break
		}
	}
	if dst == nil {
		resp.Markers = append(resp.Markers, kmsg.WriteTxnMarkersResponseMarker{ProducerID: mk.ProducerID})
		dst = &resp.Markers[len(resp.Markers)-1]
	}
	if n := len(dst.Topics); n == 0 || dst.Topics[n-1].Topic != topic {
		dst.Topics = append(dst.Topics, kmsg.WriteTxnMarkersResponseMarkerTopic{Topic: topic})
	}
	last := &dst.Topics[len(dst.Topics)-1]
	last.Partitions = append(last.Partitions, kmsg.WriteTxnMarkersResponseMarkerTopicPartition{Partition: partition, ErrorCode: code})
}
