//go:build linux && clusterlong

package integration

// TestClusterLongTLSDynamicKeystorePersists: in a cluster a broker's dynamic
// key store change is written to the metadata log (this broker's BROKER
// ConfigRecords, through the controller) and served again after the whole
// cluster restarts. Node 2's SSL listener gets an inline certificate and
// key (ssl.keystore.key, a secret: stored encrypted with
// password.encoder.secret, so the metadata log holds no PEM key); node 1
// keeps its own. Built with -tags clusterlong (make cluster-long): about
// 12 s per backend.

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/internal/testpki"
)

func TestClusterLongTLSDynamicKeystorePersists(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		dir := t.TempDir()
		ca := testpki.NewCA(t, "ringbroker cluster CA")
		c := newTestCluster(t, backend)
		sslAddr := map[int32]string{}
		keystores := map[int32]string{}
		for _, n := range c.nodes {
			sslAddr[n.id] = net.JoinHostPort(n.host, fmt.Sprint(freePortOn(t, n.host)))
			leaf := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: fmt.Sprintf("broker-%d", n.id)},
				Server: true, IPs: []net.IP{net.ParseIP(n.host)}})
			keystores[n.id] = testpki.Write(t, dir, fmt.Sprintf("broker-%d.pem", n.id), leaf.CertPEM, leaf.KeyPEM)
		}
		c.nodeProps = func(n *clusterNode) map[string]string {
			return map[string]string{
				"listeners":                      fmt.Sprintf("PLAINTEXT://%s,SSL://%s,CONTROLLER://%s", n.addr(), sslAddr[n.id], n.ctlAddr()),
				"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT",
				"inter.broker.listener.name":     "PLAINTEXT",
				"advertised.listeners":           fmt.Sprintf("PLAINTEXT://%s,SSL://%s", n.addr(), sslAddr[n.id]),
				"ssl.keystore.type":              "PEM",
				"ssl.keystore.location":          keystores[n.id],
				"password.encoder.secret":        "the cluster's encoder secret",
				"controlled.shutdown.enable":     "false", // the whole cluster stops at once
			}
		}
		c.start(t)
		served := func(addr string) (*big.Int, error) {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: ca.Pool()})
			if err != nil {
				return nil, err
			}
			defer conn.Close()
			return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
		}
		first1, err := served(sslAddr[1])
		if err != nil {
			t.Fatal(err)
		}
		n2 := c.node(2)
		inline := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker-2"}, Server: true, IPs: []net.IP{net.ParseIP(n2.host)}})
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, "2"
		for k, v := range map[string]string{
			"listener.name.ssl.ssl.keystore.location":          "",
			"listener.name.ssl.ssl.keystore.certificate.chain": string(inline.CertPEM),
			"listener.name.ssl.ssl.keystore.key":               string(inline.KeyPEM),
		} {
			cf := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			cf.Name, cf.Op, cf.Value = k, kmsg.IncrementalAlterConfigOpSet, &v
			res.Configs = append(res.Configs, cf)
		}
		req.Resources = append(req.Resources, res)
		resp, err := n2.request(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if r := resp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0]; r.ErrorCode != 0 {
			t.Fatalf("the rotation on node 2: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
		}
		// Answered once node 2 applied its records: served at once.
		if got, err := served(sslAddr[2]); err != nil || got.Cmp(inline.Cert.SerialNumber) != 0 {
			t.Fatalf("node 2 serves %v (%v), want the inline certificate %v", got, err, inline.Cert.SerialNumber)
		}
		if got, err := served(sslAddr[1]); err != nil || got.Cmp(first1) != 0 {
			t.Fatalf("node 1's certificate changed: %v (%v)", got, err)
		}

		c.stopAll(t)
		// The metadata log holds the key encrypted, never in clear.
		encrypted := false
		err = filepath.WalkDir(n2.dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.Contains(p, "__cluster_metadata") {
				return err
			}
			b, err := os.ReadFile(p)
			if err == nil && strings.Contains(string(b), "PRIVATE KEY") {
				return fmt.Errorf("%s holds a PEM private key", p)
			}
			encrypted = encrypted || strings.Contains(string(b), "encryptedPassword")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !encrypted {
			t.Fatal("no encrypted key in node 2's metadata log")
		}
		c.start(t)
		waitFor(t, "node 2 serving its dynamic certificate after the restart", clusterStepTimeout, func() error {
			got, err := served(sslAddr[2])
			if err != nil {
				return err
			}
			if got.Cmp(inline.Cert.SerialNumber) != 0 {
				return fmt.Errorf("serving %v", got)
			}
			return nil
		})
		if got, err := served(sslAddr[1]); err != nil || got.Cmp(first1) != 0 {
			t.Fatalf("after the restart node 1 serves %v (%v), want its own %v", got, err, first1)
		}
	})
}
