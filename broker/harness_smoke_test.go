package broker

import (
	"context"
	"testing"
)

func TestHarnessBrokerMetadata(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		md, err := tb.admin().BrokerMetadata(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(md.Brokers) != 1 || md.Brokers[0].NodeID != 0 || md.Cluster != tb.Broker.ClusterID() {
			t.Fatalf("metadata = %+v", md)
		}
		tb.restart()
		md2, err := tb.admin().BrokerMetadata(context.Background())
		if err != nil || md2.Cluster != md.Cluster {
			t.Fatalf("after restart: %+v %v", md2, err)
		}
	})
}
