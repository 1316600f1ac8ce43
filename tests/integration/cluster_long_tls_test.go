//go:build linux && clusterlong

package integration

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// TestClusterLongSASLSSLInterBroker: TestClusterSSLInterBroker
// (cluster_tls_test.go) with SASL_SSL as the only broker
// listener: the replica fetchers authenticate with
// sasl.mechanism.inter.broker.protocol=PLAIN and the username and password
// of the listener's JAAS config, over TLS.
func TestClusterLongSASLSSLInterBroker(t *testing.T) {
	testClusterTLSInterBroker(t, "SASL_SSL", map[string]string{
		"sasl.enabled.mechanisms":              "PLAIN",
		"sasl.mechanism.inter.broker.protocol": "PLAIN",
		"listener.name.sasl_ssl.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required ` +
			`username="broker" password="broker-secret" user_broker="broker-secret" user_client="client-secret";`,
	}, []kgo.Opt{kgo.SASL(plain.Auth{User: "client", Pass: "client-secret"}.AsMechanism())})
}
