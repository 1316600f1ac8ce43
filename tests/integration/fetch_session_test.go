//go:build linux

package integration

// Fetch sessions under hostile load: full fetches that create sessions and
// name tens of thousands of partitions that do not exist, from several
// connections, round after round. Kafka keeps at most
// max.incremental.fetch.session.cache.slots sessions; the broker must also not
// keep what does not exist, so its memory does not grow with what clients name.

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// fetchSessionRounds rounds of fetchSessionConns connections, each sending
	// fetchSessionRequests full fetches of fetchSessionPartitions partitions
	// (about 1 MiB each): about 120 MiB of requests in all.
	fetchSessionRounds     = 3
	fetchSessionConns      = 8
	fetchSessionRequests   = 5
	fetchSessionPartitions = 30000
	// fetchSessionPeakGrowthMax bounds the peak RSS growth over the whole test:
	// what requests in flight cost (a request of 1 MiB decodes to ~3 MiB, its
	// answer is ~1 MiB; up to fetchSessionConns at once), not what they named.
	// Measured: +120 MiB with sessions keeping only existing partitions,
	// +1.4-1.6 GiB (and staying after the connections close) when they kept
	// every partition named.
	fetchSessionPeakGrowthMax = 256 << 20
	// fetchSessionAfterSlack is how far the RSS after a round may sit above the
	// first round's peak: heap reused from round to round, not retained by it.
	fetchSessionAfterSlack = 64 << 20
)

// TestHostileFetchSessionPartitions: sessions keep only partitions that exist,
// so rounds of fetches naming nonexistent ones do not accumulate memory: the
// peak stays bounded, and after each round closes its connections the RSS is
// no higher than the first round's peak (plus fetchSessionAfterSlack).
func TestHostileFetchSessionPartitions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		createTopic(t, b.Addr, "fs", 1, nil)
		// One full fetch creating a session (epoch 0), partition 0 exists,
		// 1..fetchSessionPartitions-1 do not.
		req := kmsg.NewPtrFetchRequest()
		req.Version = 12
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 0, 1, 1<<20
		req.SessionID, req.SessionEpoch = 0, 0
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "fs"
		for p := int32(0); p < fetchSessionPartitions; p++ {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.PartitionMaxBytes = p, 1<<10
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		frame := kmsgFrame(req, 9, testClientID)

		if err := b.resetPeakRSS(); err != nil {
			t.Fatalf("reset the broker's peak RSS: %v", err)
		}
		before, err := b.RSS()
		if err != nil {
			t.Fatal(err)
		}
		var firstPeak int64
		for round := 0; round < fetchSessionRounds; round++ {
			var wg sync.WaitGroup
			errs := make(chan error, fetchSessionConns)
			for c := 0; c < fetchSessionConns; c++ {
				conn := dial(t, b.Addr)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer conn.Close()
					for i := 0; i < fetchSessionRequests; i++ {
						_ = conn.SetWriteDeadline(time.Now().Add(hostileCaseTimeout))
						if _, err := conn.Write(frame); err != nil {
							errs <- fmt.Errorf("write: %v", err)
							return
						}
						payload, closed, err := readOutcome(conn, hostileCaseTimeout)
						if err != nil || closed {
							errs <- fmt.Errorf("request %d: closed %v, %v", i, closed, err)
							return
						}
						resp := kmsg.NewPtrFetchResponse()
						if err := decodeAnswer(payload, resp, req.Version); err != nil {
							errs <- fmt.Errorf("request %d: %v", i, err)
							return
						}
						if n := len(resp.Topics); resp.ErrorCode != 0 || n != 1 || len(resp.Topics[0].Partitions) != fetchSessionPartitions {
							errs <- fmt.Errorf("request %d: error %d, %d topics, want every partition answered", i, resp.ErrorCode, n)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			peak, err := b.peakRSS()
			if err != nil {
				t.Fatal(err)
			}
			if round == 0 {
				firstPeak = peak
			}
			after, _ := b.RSS()
			t.Logf("%s round %d: %d requests of %d bytes naming %d partitions (%d nonexistent): broker RSS before %s, peak so far %s, after closing %s",
				backend, round, fetchSessionConns*fetchSessionRequests, len(frame), fetchSessionPartitions, fetchSessionPartitions-1, mib(before), mib(peak), mib(after))
			if after > firstPeak+fetchSessionAfterSlack {
				t.Errorf("round %d: RSS after closing its connections %s is above the first round's peak %s + %s: sessions keep what requests named",
					round, mib(after), mib(firstPeak), mib(fetchSessionAfterSlack))
			}
		}
		peak, _ := b.peakRSS()
		if grow := peak - before; grow > fetchSessionPeakGrowthMax {
			t.Errorf("broker RSS peak grew %s over %d rounds, want <= %s", mib(grow), fetchSessionRounds, mib(fetchSessionPeakGrowthMax))
		}
		if err := probeApiVersions(b.Addr, rawTimeout); err != nil {
			t.Fatalf("broker after the load: %v", err)
		}
	})
}
