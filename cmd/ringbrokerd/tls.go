package main

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/tlsstore"
	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/netpoll"
)

// tlsSet is the record layer of every SSL and SASL_SSL listener and the
// watcher reloading its certificates.
type tlsSet struct {
	// layers is netpoll.Options.Secure, by listener index.
	layers []netpoll.SecureLayer
	// byName: the GoTLS and the watcher of each TLS listener, by name.
	byName   map[string]*netpoll.GoTLS
	watchers map[string]*tlsstore.Watcher
}

// stop ends the watchers.
func (s *tlsSet) stop() {
	for _, w := range s.watchers {
		w.Close()
	}
}

// tlsListeners builds the record layer of every SSL and SASL_SSL listener
// (netpoll.Options.Secure, by listener index) from the ssl.* keys and
// starts a watcher per listener that reloads its certificates when the
// files change (ring.ssl.reload.interval.ms). The caller stops it.
func tlsListeners(cfg *config.Config, logger *zap.Logger) (*tlsSet, error) {
	set := &tlsSet{byName: map[string]*netpoll.GoTLS{}, watchers: map[string]*tlsstore.Watcher{}}
	interval := time.Duration(cfg.TLS.ReloadIntervalMs) * time.Millisecond
	set.layers = make([]netpoll.SecureLayer, len(cfg.Listeners))
	for i, l := range cfg.Listeners {
		switch cfg.ListenerProtocol(l.Name) {
		case config.ProtocolSSL, config.ProtocolSASLSSL:
		default:
			continue
		}
		s, err := cfg.SSL(l.Name)
		if err != nil {
			set.stop()
			return nil, err
		}
		layer := netpoll.NewGoTLS(nil)
		w, tc, err := tlsstore.NewWatcher(s, layer, logger.With(zap.String("listener", l.Name)))
		if err != nil {
			set.stop()
			return nil, err
		}
		layer.SetConfig(tc)
		w.Start(interval)
		set.watchers[l.Name] = w
		set.byName[l.Name] = layer
		set.layers[i] = layer
		logger.Info("TLS listener", zap.String("listener", l.Name), zap.String("protocol", cfg.ListenerProtocol(l.Name)),
			zap.String("client_auth", s.ClientAuth), zap.String("certificate", tc.Certificates[0].Leaf.Subject.String()),
			zap.Time("not_after", tc.Certificates[0].Leaf.NotAfter))
	}
	return set, nil
}

// interBrokerDial is how this node's own clients of other brokers (replica
// fetchers, transaction markers) connect to their inter-broker listener:
// nil (plain TCP) unless that listener is SSL, then TLS with the
// listener's configuration as served here (the same listener name on
// every broker, as Kafka assumes), reloads included.
func interBrokerDial(cfg *config.Config, set *tlsSet, timeout time.Duration, logger *zap.Logger) func(ctx context.Context, network, addr string) (net.Conn, error) {
	l, ok := cfg.InterBrokerListener()
	if !ok || !cfg.Clustered() {
		return nil
	}
	switch p := cfg.ListenerProtocol(l.Name); p {
	case config.ProtocolSSL:
	case config.ProtocolPlaintext:
		return nil
	default:
		logger.Warn("the inter-broker listener is a SASL listener: this node's replica fetchers and transaction markers do not authenticate with SASL, so other brokers will refuse them; use an SSL or PLAINTEXT listener as inter.broker.listener.name",
			zap.String("listener", l.Name), zap.String("protocol", p))
		return nil
	}
	layer := set.byName[l.Name]
	if layer == nil {
		// Advertised but not served here (a controller-only node).
		return nil
	}
	s, err := cfg.SSL(l.Name) // checked by Validate
	if err != nil {
		logger.Warn("inter-broker listener", zap.Error(err))
	}
	d := &tlsstore.Dialer{
		Config:     func() *tls.Config { return layer.Config() },
		VerifyHost: s.EndpointIdentification == "https",
		Timeout:    timeout,
	}
	logger.Info("inter-broker connections use TLS", zap.String("listener", l.Name), zap.Bool("endpoint_identification", d.VerifyHost))
	return d.DialContext
}
