package main

import (
	"time"

	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/tlsstore"
	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/netpoll"
)

// tlsListeners builds the record layer of every SSL and SASL_SSL listener
// (netpoll.Options.Secure, by listener index) from the ssl.* keys and
// starts a watcher per listener that reloads its certificates when the
// files change (ring.ssl.reload.interval.ms). stop ends the watchers.
func tlsListeners(cfg *config.Config, logger *zap.Logger) (layers []netpoll.SecureLayer, stop func(), err error) {
	var watchers []*tlsstore.Watcher
	stop = func() {
		for _, w := range watchers {
			w.Close()
		}
	}
	interval := time.Duration(cfg.TLS.ReloadIntervalMs) * time.Millisecond
	layers = make([]netpoll.SecureLayer, len(cfg.Listeners))
	for i, l := range cfg.Listeners {
		switch cfg.ListenerProtocol(l.Name) {
		case config.ProtocolSSL, config.ProtocolSASLSSL:
		default:
			continue
		}
		s, err := cfg.SSL(l.Name)
		if err != nil {
			stop()
			return nil, nil, err
		}
		layer := netpoll.NewGoTLS(nil)
		w, tc, err := tlsstore.NewWatcher(s, layer, logger.With(zap.String("listener", l.Name)))
		if err != nil {
			stop()
			return nil, nil, err
		}
		layer.SetConfig(tc)
		w.Start(interval)
		watchers = append(watchers, w)
		layers[i] = layer
		logger.Info("TLS listener", zap.String("listener", l.Name), zap.String("protocol", cfg.ListenerProtocol(l.Name)),
			zap.String("client_auth", s.ClientAuth), zap.String("certificate", tc.Certificates[0].Leaf.Subject.String()),
			zap.Time("not_after", tc.Certificates[0].Leaf.NotAfter))
	}
	return layers, stop, nil
}
