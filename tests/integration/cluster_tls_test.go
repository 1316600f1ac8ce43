package integration

// TestClusterSSLInterBroker: three nodes whose only broker listener is SSL
// with ssl.client.auth=required (the controller listener stays PLAINTEXT,
// as Kafka allows): inter.broker.listener.name=SSL, so each node's replica
// fetchers dial the leaders over TLS with the listener's key store as
// their client certificate and its trust store (and host name check,
// ssl.endpoint.identification.algorithm=https) for the leader's. An RF 3
// topic with min.insync.replicas=3 takes acks=all records only when both
// followers fetch; then every replica's files are the leader's bytes. A
// transaction over partitions led by all three nodes is then read
// committed: its markers went to the other leaders over the same listener.
// The SASL_SSL variant (TestClusterLongSASLSSLInterBroker) runs in make
// cluster-long.

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/internal/testpki"
)

func TestClusterSSLInterBroker(t *testing.T) {
	testClusterTLSInterBroker(t, "SSL", map[string]string{
		"ssl.client.auth": "required",
	}, nil)
}

func testClusterTLSInterBroker(t *testing.T, protocol string, props map[string]string, clientOpts []kgo.Opt) {
	forEachBackend(t, func(t *testing.T, backend string) {
		dir := t.TempDir()
		ca := testpki.NewCA(t, "ringbroker cluster CA")
		caPath := testpki.Write(t, dir, "ca.pem", ca.PEM)
		c := newTestCluster(t, backend)
		keystores := map[int32]string{}
		for _, n := range c.nodes {
			leaf := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: fmt.Sprintf("broker-%d", n.id)},
				Server: true, ClientToo: true, IPs: []net.IP{net.ParseIP(n.host)}})
			keystores[n.id] = testpki.Write(t, dir, fmt.Sprintf("broker-%d.pem", n.id), leaf.CertPEM, leaf.KeyPEM)
		}
		c.nodeProps = func(n *clusterNode) map[string]string {
			p := map[string]string{
				"listeners":                             fmt.Sprintf("%s://%s,CONTROLLER://%s", protocol, n.addr(), n.ctlAddr()),
				"listener.security.protocol.map":        protocol + ":" + protocol + ",CONTROLLER:PLAINTEXT",
				"inter.broker.listener.name":            protocol,
				"ssl.keystore.type":                     "PEM",
				"ssl.keystore.location":                 keystores[n.id],
				"ssl.truststore.type":                   "PEM",
				"ssl.truststore.location":               caPath,
				"ssl.endpoint.identification.algorithm": "https",
			}
			for k, v := range props {
				p[k] = v
			}
			return p
		}
		client := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "test-client"}})
		cert := client.TLS(t)
		clientTLS := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cert}}
		c.useTLS(t, clientTLS, clientOpts...)
		c.start(t)
		for _, n := range c.nodes {
			logs := n.proc.Logs()
			if !strings.Contains(logs, "inter-broker connections use TLS") {
				t.Fatalf("node %d does not say its inter-broker connections use TLS", n.id)
			}
			if strings.HasPrefix(protocol, "SASL") && !strings.Contains(logs, "inter-broker connections authenticate with SASL") {
				t.Fatalf("node %d does not say its inter-broker connections authenticate with SASL", n.id)
			}
		}

		const topic = "tls-repl"
		const parts = 3
		c.createReplicatedTopic(t, topic, parts, 3, nil, map[string]string{"min.insync.replicas": "3"})
		replicas := c.checkReplicaSets(t, topic, parts, 3)
		c.expectISR(t, topic, replicas, nil)

		const total, round = 2000, 250
		recs := spreadRecords(topic, total, parts, 600, false)
		cl := seedClient(t, c.seeds(), append([]kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DialTLSConfig(clientTLS.Clone())}, clientOpts...)...)
		start := time.Now()
		for i := 0; i < total; i += round {
			produceSync(t, cl, topic, recs[i:min(i+round, total)])
		}
		t.Logf("%d records acknowledged with acks=all and min.insync.replicas=3 over %s-only brokers in %v", total, protocol, time.Since(start).Round(time.Millisecond))
		took, err := pollUntil(replicationCatchUpTimeout, func() error { return c.compareReplicas(topic, replicas) })
		if err != nil {
			t.Fatalf("replicas of %s not byte-identical within %v: %v", topic, replicationCatchUpTimeout, err)
		}
		t.Logf("every replica byte-identical %v after the last ack", took.Round(time.Millisecond))
		c.expectISR(t, topic, replicas, nil)

		// Transaction markers: the coordinator's node writes them to the
		// leaders of the other partitions through its inter-broker client,
		// over the same listener. read_committed sees a transaction only
		// once every leader wrote its marker.
		const txTopic = "tls-txn"
		c.createReplicatedTopic(t, txTopic, parts, 3, nil, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 2*clusterStepTimeout)
		defer cancel()
		p := seedClient(t, c.seeds(), append([]kgo.Opt{kgo.TransactionalID("tls-tx"), kgo.DefaultProduceTopic(txTopic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(20 * time.Second), kgo.DialTLSConfig(clientTLS.Clone())}, clientOpts...)...)
		for _, commit := range []bool{true, false} {
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			for part := int32(0); part < parts; part++ {
				r := &kgo.Record{Partition: part, Value: []byte(fmt.Sprintf("commit=%v-%d", commit, part))}
				if err := produceBounded(ctx, p, r); err != nil {
					t.Fatalf("transactional produce to %s/%d: %v", txTopic, part, err)
				}
			}
			if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatalf("end transaction (commit %v): %v", commit, err)
			}
		}
		p.Close()
		rc := seedClient(t, c.seeds(), append([]kgo.Opt{kgo.ConsumeTopics(txTopic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DialTLSConfig(clientTLS.Clone())}, clientOpts...)...)
		seen := map[string]bool{}
		for len(seen) < parts && ctx.Err() == nil {
			rc.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				if v := string(r.Value); seen[v] || strings.HasPrefix(v, "commit=false") {
					t.Errorf("read_committed returned %q (again, or aborted)", v)
				} else {
					seen[v] = true
				}
			})
		}
		rc.Close()
		if len(seen) != parts {
			t.Fatalf("read_committed read %d of %d committed records: markers not written to every leader", len(seen), parts)
		}

		// In a cluster a node's own TLS keys are altered on that node (not
		// forwarded to the controller): node 1 rotates its certificate,
		// a new connection to it gets the new one.
		n1 := c.node(1)
		rotated := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker-1"},
			Server: true, ClientToo: true, IPs: []net.IP{net.ParseIP(n1.host)}})
		rotatedPath := testpki.Write(t, dir, "broker-1-rotated.pem", rotated.CertPEM, rotated.KeyPEM)
		areq := kmsg.NewPtrIncrementalAlterConfigsRequest()
		ares := kmsg.NewIncrementalAlterConfigsRequestResource()
		ares.ResourceType, ares.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
		ac := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		ac.Name, ac.Op, ac.Value = "listener.name."+strings.ToLower(protocol)+".ssl.keystore.location", kmsg.IncrementalAlterConfigOpSet, &rotatedPath
		ares.Configs = append(ares.Configs, ac)
		areq.Resources = append(areq.Resources, ares)
		resp, err := n1.request(ctx, areq)
		if err != nil {
			t.Fatal(err)
		}
		if r := resp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0]; r.ErrorCode != 0 {
			t.Fatalf("rotating node 1's certificate: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n1.addr(), clientTLS.Clone())
		if err != nil {
			t.Fatal(err)
		}
		serial := conn.ConnectionState().PeerCertificates[0].SerialNumber
		conn.Close()
		if serial.Cmp(rotated.Cert.SerialNumber) != 0 {
			t.Fatalf("node 1 serves certificate %v after the rotation, want %v", serial, rotated.Cert.SerialNumber)
		}
	})
}
