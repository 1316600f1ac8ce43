package integration

// TestClusterControllerSSL: controller.listener.names mapped to SSL with
// ssl.client.auth=required. The metadata quorum's connections (raft
// messages, broker registration and heartbeats, forwarded admin requests)
// run over TLS with the listener's key store both ways, host names checked
// (ssl.endpoint.identification.algorithm=https): the three nodes form the
// quorum, a topic is created through it and takes acks=all records; a
// client without a certificate cannot complete a handshake on the
// controller port, and one speaking plaintext gets no quorum handshake
// answer.

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ringbroker/ringbroker/internal/testpki"
)

func TestClusterControllerSSL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		dir := t.TempDir()
		ca := testpki.NewCA(t, "ringbroker controller CA")
		caPath := testpki.Write(t, dir, "ca.pem", ca.PEM)
		c := newTestCluster(t, backend)
		keystores := map[int32]string{}
		for _, n := range c.nodes {
			leaf := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: fmt.Sprintf("controller-%d", n.id)},
				Server: true, ClientToo: true, IPs: []net.IP{net.ParseIP(n.host)}})
			keystores[n.id] = testpki.Write(t, dir, fmt.Sprintf("controller-%d.pem", n.id), leaf.CertPEM, leaf.KeyPEM)
		}
		c.nodeProps = func(n *clusterNode) map[string]string {
			return map[string]string{
				"listener.security.protocol.map":                   "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL",
				"listener.name.controller.ssl.keystore.type":       "PEM",
				"listener.name.controller.ssl.keystore.location":   keystores[n.id],
				"listener.name.controller.ssl.truststore.type":     "PEM",
				"listener.name.controller.ssl.truststore.location": caPath,
				"listener.name.controller.ssl.client.auth":         "required",
				"controlled.shutdown.enable":                       "false",
			}
		}
		c.start(t)
		for _, n := range c.nodes {
			if !strings.Contains(n.proc.Logs(), "the metadata quorum's connections use TLS") {
				t.Fatalf("node %d does not say its quorum connections use TLS", n.id)
			}
		}
		const topic = "ctl-tls"
		c.createReplicatedTopic(t, topic, 3, 3, nil, map[string]string{"min.insync.replicas": "3"})
		replicas := c.checkReplicaSets(t, topic, 3, 3)
		c.expectISR(t, topic, replicas, nil)
		cl := seedClient(t, c.seeds(), kgo.RequiredAcks(kgo.AllISRAcks()))
		produceSync(t, cl, topic, spreadRecords(topic, 300, 3, 200, false))

		ctl := c.node(1).ctlAddr()
		// No client certificate: the handshake fails (TLS 1.3 reports it at
		// the first read).
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ctl, &tls.Config{RootCAs: ca.Pool(), ServerName: c.node(1).host})
		if err == nil {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if err == nil || strings.Contains(err.Error(), "timeout") {
			t.Fatalf("a TLS client without a certificate on the controller listener: %v, want a refused handshake", err)
		}
		// Plaintext bytes: no answer, the connection closes.
		raw, err := net.DialTimeout("tcp", ctl, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := raw.Write([]byte("\x00\x00\x00\x10plaintext hello!")); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(raw)
		if err != nil && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("plaintext on the controller listener: %v", err)
		}
		if strings.Contains(string(b), "ringbroker") || len(b) > 7 && b[0] != 0x15 {
			t.Fatalf("plaintext on the controller listener got an answer other than a TLS alert: %q", b)
		}
	})
}
