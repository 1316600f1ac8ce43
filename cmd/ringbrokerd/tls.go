package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/sasl"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/tlsstore"
	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/netpoll"
)

// tlsSet is the record layer of every SSL and SASL_SSL listener and the
// watcher reloading its certificates.
type tlsSet struct {
	cfg *config.Config
	// layers is netpoll.Options.Secure, by listener index.
	layers []netpoll.SecureLayer
	// byName: the GoTLS and the watcher of each TLS listener, by name.
	byName   map[string]*netpoll.GoTLS
	watchers map[string]*tlsstore.Watcher

	// mu serialises AlterTLS; overrides are the dynamic values in force
	// (full listener.name.<l>.ssl.* keys), on top of server.properties.
	mu        sync.Mutex
	overrides map[string]string
}

// DynamicTLSConfigs implements broker.DynamicTLS.
func (s *tlsSet) DynamicTLSConfigs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.overrides)
}

// AlterTLS implements broker.DynamicTLS: every listener ops touch gets
// its settings with the new overrides, loaded and checked against what it
// serves (tlsstore.Watcher.Prepare); only when all pass, and persist has
// stored the result, are they served (Commit), unless validateOnly.
func (s *tlsSet) AlterTLS(ops map[string]*string, validateOnly bool, persist func(next map[string]string) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alterLocked(ops, validateOnly, persist)
}

// ReplaceTLS implements broker.DynamicTLS.
func (s *tlsSet) ReplaceTLS(next map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ops := map[string]*string{}
	for k := range s.overrides {
		ops[k] = nil
	}
	for k, v := range next {
		ops[k] = &v
	}
	return s.alterLocked(ops, false, nil)
}

// alterLocked is AlterTLS. REQUIRES: s.mu held.
func (s *tlsSet) alterLocked(ops map[string]*string, validateOnly bool, persist func(next map[string]string) error) error {
	next := make(map[string]string, len(s.overrides)+len(ops))
	for k, v := range s.overrides {
		next[k] = v
	}
	touched := map[string]bool{}
	for k, v := range ops {
		l, key, ok := config.DynamicSSLKey(k)
		if !ok {
			return fmt.Errorf("%s cannot be updated dynamically", k)
		}
		k = config.ListenerKey(l, key) // the listener name's case as server.properties keys have it
		if s.watchers[l] == nil {
			return fmt.Errorf("%s: %s is not an SSL or SASL_SSL listener of this broker", k, l)
		}
		touched[l] = true
		if v == nil {
			delete(next, k)
		} else {
			next[k] = *v
		}
	}
	var reps []*tlsstore.Replacement
	for _, l := range slices.Sorted(maps.Keys(touched)) {
		own := map[string]string{}
		for k, v := range next {
			if name, _, _ := config.DynamicSSLKey(k); name == l {
				own[k] = v
			}
		}
		settings, err := s.cfg.SSLWith(l, own)
		if err != nil {
			return err
		}
		rep, err := s.watchers[l].Prepare(settings)
		if err != nil {
			return fmt.Errorf("listener %s: %w", l, err)
		}
		reps = append(reps, rep)
	}
	if validateOnly {
		return nil
	}
	if persist != nil {
		if err := persist(maps.Clone(next)); err != nil {
			return err
		}
	}
	for _, r := range reps {
		r.Commit()
	}
	s.overrides = next
	return nil
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
	set := &tlsSet{cfg: cfg, byName: map[string]*netpoll.GoTLS{}, watchers: map[string]*tlsstore.Watcher{}}
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

// interBroker is how this node's own clients of other brokers connect to
// their inter-broker listener.
type interBroker struct {
	// fetch dials for the replica fetchers: TLS and SASL done (nil: plain
	// TCP).
	fetch func(ctx context.Context, network, addr string) (net.Conn, error)
	// markers dials for the transaction markers' kgo client: TLS only
	// (nil: plain TCP); kgo runs the SASL exchange itself with
	// markersSASL (nil: none), re-authenticating as KIP-368 asks.
	markers     func(ctx context.Context, network, addr string) (net.Conn, error)
	markersSASL sasl.Mechanism
}

// interBrokerDial is how this node's own clients of other brokers (replica
// fetchers, transaction markers) connect to their inter-broker listener:
// plain TCP for a PLAINTEXT one; TLS with the listener's configuration as
// served here (the same listener name on every broker, as Kafka assumes;
// reloads included) for SSL; and for SASL_PLAINTEXT and SASL_SSL the SASL
// exchange of sasl.mechanism.inter.broker.protocol with the listener's
// JAAS username and password (interbroker_sasl.go; KIP-368
// re-authentication included). A SASL listener without usable credentials
// is logged and dialed without SASL (a one-node cluster has no follower;
// other brokers then refuse them).
func interBrokerDial(cfg *config.Config, set *tlsSet, timeout time.Duration, logger *zap.Logger) interBroker {
	var out interBroker
	l, ok := cfg.InterBrokerListener()
	if !ok || !cfg.Clustered() {
		return out
	}
	protocol := cfg.ListenerProtocol(l.Name)
	if protocol == config.ProtocolPlaintext {
		return out
	}
	d := &tlsstore.Dialer{Timeout: timeout}
	if protocol == config.ProtocolSSL || protocol == config.ProtocolSASLSSL {
		layer := set.byName[l.Name]
		if layer == nil {
			// Advertised but not served here (a controller-only node).
			return out
		}
		s, err := cfg.SSL(l.Name) // checked by Validate
		if err != nil {
			logger.Warn("inter-broker listener", zap.Error(err))
		}
		d.Config = func() *tls.Config { return layer.Config() }
		d.VerifyHost = s.EndpointIdentification == "https"
		tlsOnly := *d
		out.markers = tlsOnly.DialContext
	}
	if config.IsSASLProtocol(protocol) {
		mech, user, password, err := cfg.InterBrokerSASL()
		if err == nil {
			var m sasl.Mechanism
			if m, err = interBrokerMechanism(mech, user, password); err == nil {
				clientID := fmt.Sprintf("broker-%d", cfg.NodeID)
				d.Authenticate = func(ctx context.Context, nc net.Conn, host string) (net.Conn, error) {
					return authenticateSession(ctx, nc, m, host, clientID)
				}
				out.markersSASL = m
				logger.Info("inter-broker connections authenticate with SASL", zap.String("listener", l.Name), zap.String("mechanism", mech), zap.String("user", user))
			}
		}
		if err != nil {
			logger.Warn("the inter-broker listener is a SASL listener but this node's replica fetchers and transaction markers cannot authenticate: other brokers will refuse them",
				zap.String("listener", l.Name), zap.String("protocol", protocol), zap.Error(err))
		}
	}
	if d.Config != nil {
		logger.Info("inter-broker connections use TLS", zap.String("listener", l.Name), zap.Bool("endpoint_identification", d.VerifyHost))
	}
	if d.Config != nil || d.Authenticate != nil {
		out.fetch = d.DialContext
	}
	return out
}

// controllerTLS is the metadata quorum's TLS when the controller listener
// (the first of controller.listener.names) is mapped to SSL: the quorum
// transport's listener is wrapped in TLS with the listener's ssl.* keys
// (server side: its key store, its trust store and ssl.client.auth), and
// its connections to the other controllers are dialed with the client
// side of the same settings (key store as client certificate, trust
// store as roots, host name checked when
// ssl.endpoint.identification.algorithm=https), as Kafka's controllers and
// brokers use the controller listener's ssl.* keys both ways. A watcher
// reloads the stores (ring.ssl.reload.interval.ms); new connections get
// them. All nil for a PLAINTEXT controller listener; config validation
// refuses SASL ones.
type controllerTLS struct {
	wrap    func(net.Listener) net.Listener
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	watcher *tlsstore.Watcher
}

// tlsTarget holds the configuration a watcher serves.
type tlsTarget struct{ cfg atomic.Pointer[tls.Config] }

func (t *tlsTarget) SetConfig(c *tls.Config) { t.cfg.Store(c) }

func newControllerTLS(cfg *config.Config, logger *zap.Logger) (*controllerTLS, error) {
	out := &controllerTLS{}
	if !cfg.Clustered() || len(cfg.ControllerListenerNames) == 0 {
		return out, nil
	}
	name := cfg.ControllerListenerNames[0]
	if cfg.ListenerProtocol(name) != config.ProtocolSSL {
		return out, nil
	}
	s, err := cfg.SSL(name)
	if err != nil {
		return nil, err
	}
	target := &tlsTarget{}
	w, tc, err := tlsstore.NewWatcher(s, target, logger.With(zap.String("listener", name)))
	if err != nil {
		return nil, err
	}
	target.SetConfig(tc)
	w.Start(time.Duration(cfg.TLS.ReloadIntervalMs) * time.Millisecond)
	out.watcher = w
	server := &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return target.cfg.Load(), nil }}
	out.wrap = func(ln net.Listener) net.Listener { return tls.NewListener(ln, server) }
	d := &tlsstore.Dialer{Config: target.cfg.Load, VerifyHost: s.EndpointIdentification == "https"}
	out.dial = d.DialContext
	logger.Info("the metadata quorum's connections use TLS", zap.String("listener", name), zap.String("client_auth", s.ClientAuth),
		zap.Bool("endpoint_identification", d.VerifyHost), zap.String("certificate", tc.Certificates[0].Leaf.Subject.String()))
	return out, nil
}

// stop ends the watcher.
func (c *controllerTLS) stop() {
	if c.watcher != nil {
		c.watcher.Close()
	}
}
