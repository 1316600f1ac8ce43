package tlsstore

// The client side: ringbroker's own connections to another broker's
// inter-broker listener (replica fetchers, transaction markers) when that
// listener is SSL, as Kafka's brokers use the inter-broker listener's
// ssl.* keys for their outgoing connections too:
//
//   - the key store's certificate is the client certificate (mTLS when
//     the other broker asks for one);
//   - the trust store is what the other broker's certificate must chain
//     to (the system's roots when the listener has none);
//   - ssl.endpoint.identification.algorithm=https checks that the
//     certificate names the host dialed; empty checks the chain only;
//   - versions and cipher suites are the listener's.
//
// The configuration is derived from the listener's served one at each
// dial, so a reload (file watcher, IncrementalAlterConfigs) reaches new
// outgoing connections as it reaches new incoming ones.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"
)

// ClientConfig is the client side of server (a listener's configuration
// as Load builds it) for a connection to host. verifyHost checks host
// against the peer's certificate.
func ClientConfig(server *tls.Config, host string, verifyHost bool) *tls.Config {
	cfg := &tls.Config{
		Certificates: server.Certificates,
		RootCAs:      server.ClientCAs, // the trust store; nil: the system's roots
		MinVersion:   server.MinVersion,
		MaxVersion:   server.MaxVersion,
		CipherSuites: server.CipherSuites,
		ServerName:   host,
	}
	if !verifyHost {
		// crypto/tls checks the chain and the host name together; without
		// the host name the chain is checked here, as Java's
		// SSLEngine does with an empty endpoint identification algorithm.
		roots := server.ClientCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the broker sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return cfg
}

// Dialer opens TCP connections to other brokers, over TLS when Config is
// set, authenticated by Authenticate when set. Its DialContext has the shape kgo.Dialer and the replica fetchers
// take.
type Dialer struct {
	// Config returns the listener's served configuration (netpoll.GoTLS's
	// Config); nil: plaintext.
	Config func() *tls.Config
	// VerifyHost: ssl.endpoint.identification.algorithm=https.
	VerifyHost bool
	// Timeout bounds the TCP connect and the handshakes (0: ctx only).
	Timeout time.Duration
	// Authenticate, when set, runs on the connection (after the TLS
	// handshake) before it is returned: the SASL exchange of a SASL
	// inter-broker listener. host is the host dialed. It returns the
	// connection to hand out (nc, or nc wrapped to re-authenticate later).
	Authenticate func(ctx context.Context, nc net.Conn, host string) (net.Conn, error)
}

// DialContext connects to addr ("host:port") and, over TLS, completes the
// handshake before returning.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if d.Config != nil {
		tc := tls.Client(nc, ClientConfig(d.Config(), host, d.VerifyHost))
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		nc = tc
	}
	if d.Authenticate != nil {
		authed, err := d.Authenticate(ctx, nc, host)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("authenticating to %s: %w", addr, err)
		}
		nc = authed
	}
	return nc, nil
}
