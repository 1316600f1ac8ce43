package broker

// Where the dynamic TLS values live (dynamic_tls.go changes them), as
// Kafka keeps dynamic broker configs:
//   - single node: the blob "dynamic-broker-configs" of the security
//     store's backend (auth/store.Backend: the first log dir, written
//     atomically), saved before the new stores are served and before the
//     answer; loaded by New, so a restart serves them again before any
//     listener accepts;
//   - cluster: ConfigRecords of the BROKER resource named by this node id
//     in the metadata log: the node checks the change against what it
//     serves, then forwards an IncrementalAlterConfigs of that resource
//     to the active controller, which writes the records; every node
//     replays them and the one they name serves them (syncDynamicTLS, from
//     OnMetadata, the first image after a start included), before the
//     forwarded request is answered.
//
// Secrets (a listener's ssl.key.password, ssl.keystore.key) are stored
// encrypted with password.encoder.secret (auth/pwenc, Kafka's encoder and
// format); without that secret setting one is refused with Kafka's
// "Password encoder secret not configured" (INVALID_CONFIG, as Kafka's
// pre-KRaft brokers answered; KRaft itself stores them in clear). A stored
// secret that does not decode (the encoder secret changed without
// password.encoder.old.secret) is dropped with an error log line, as
// Kafka's DynamicBrokerConfig does; a stored set that no longer loads (a
// file gone) is logged and server.properties serves.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/pwenc"
	"github.com/ringbroker/ringbroker/auth/store"
	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/metadata"
)

// dynamicConfigsBlob is the single node's stored dynamic broker configs.
const dynamicConfigsBlob = "dynamic-broker-configs"

// storedDynamicConfigs is the blob's content (JSON; the backend writes it
// atomically, so it is whole or absent).
type storedDynamicConfigs struct {
	Version int `json:"version"`
	// Configs are full keys (listener.name.<l>.ssl.*) to their values,
	// secrets encoded by pwenc.
	Configs map[string]string `json:"configs"`
}

// isSecretTLSKey reports whether a dynamic TLS key holds a secret.
func isSecretTLSKey(k string) bool {
	_, key, _ := config.DynamicSSLKey(k)
	return key == "ssl.key.password" || key == "ssl.keystore.key"
}

// canonicalTLSKey is k with its listener name as server.properties keys
// spell it (the key the stores and the image use).
func canonicalTLSKey(k string) string {
	l, key, ok := config.DynamicSSLKey(k)
	if !ok {
		return k
	}
	return config.ListenerKey(l, key)
}

// encodeTLSValues encrypts the secrets of values (full keys).
func (b *Broker) encodeTLSValues(values map[string]*string) (map[string]*string, error) {
	out := make(map[string]*string, len(values))
	for k, v := range values {
		if v != nil && isSecretTLSKey(k) {
			enc, err := b.opts.PasswordEncoder.Encode(*v)
			if err != nil {
				return nil, err
			}
			v = &enc
		}
		out[canonicalTLSKey(k)] = v
	}
	return out, nil
}

// decodeTLSValues decrypts the secrets of stored values; one that does
// not decode is dropped and logged.
func (b *Broker) decodeTLSValues(stored map[string]string) map[string]string {
	out := make(map[string]string, len(stored))
	for k, v := range stored {
		if _, _, ok := config.DynamicSSLKey(k); !ok {
			continue
		}
		if isSecretTLSKey(k) {
			plain, err := b.opts.PasswordEncoder.Decode(v)
			if err != nil {
				b.log.Error("a stored dynamic TLS secret could not be decoded (password.encoder.secret changed? set the old one as password.encoder.old.secret); ignoring it",
					zap.String("config", k), zap.Error(err))
				continue
			}
			v = plain
		}
		out[canonicalTLSKey(k)] = v
	}
	return out
}

// secretRefused is the answer to a secret set without an encoder secret.
func (b *Broker) secretRefused(ops map[string]*string) error {
	if b.opts.PasswordEncoder.Secret != "" {
		return nil
	}
	for k, v := range ops {
		if v != nil && isSecretTLSKey(k) {
			return fmt.Errorf("%w: Invalid config value for resource ConfigResource(type=BROKER, name='%d'): %v", kerr.InvalidConfig, b.opts.NodeID, pwenc.ErrNoSecret)
		}
	}
	return nil
}

// dynamicBackend is where a single node stores its dynamic configs.
func (b *Broker) dynamicBackend() store.Backend {
	if b.sec != nil && b.sec.backend != nil {
		return b.sec.backend
	}
	return store.FileBackend{FS: b.fs(), Dir: b.opts.DataDir}
}

// saveDynamicTLS stores next (the dynamic TLS values in force after a
// change, plain) on a single node.
func (b *Broker) saveDynamicTLS(next map[string]string) error {
	values := make(map[string]*string, len(next))
	for k, v := range next {
		values[k] = &v
	}
	enc, err := b.encodeTLSValues(values)
	if err != nil {
		return err
	}
	s := storedDynamicConfigs{Version: 1, Configs: make(map[string]string, len(enc))}
	for k, v := range enc {
		s.Configs[k] = *v
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := b.dynamicBackend().Save(dynamicConfigsBlob, data); err != nil {
		return fmt.Errorf("%w: storing the dynamic broker configs: %v", kerr.KafkaStorageError, err)
	}
	return nil
}

// loadDynamicTLS serves a single node's stored dynamic TLS values (New).
func (b *Broker) loadDynamicTLS() error {
	if b.opts.DynamicTLS == nil || b.opts.Cluster != nil {
		return nil
	}
	data, ok, err := b.dynamicBackend().Load(dynamicConfigsBlob)
	if err != nil || !ok {
		return err
	}
	var s storedDynamicConfigs
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	if s.Version != 1 {
		return fmt.Errorf("version %d, this build reads version 1", s.Version)
	}
	b.applyStoredTLS(s.Configs)
	return nil
}

// applyStoredTLS makes the stored values (secrets encoded) the dynamic TLS
// values in force, unless they already are.
func (b *Broker) applyStoredTLS(stored map[string]string) {
	next := b.decodeTLSValues(stored)
	if maps.Equal(next, b.opts.DynamicTLS.DynamicTLSConfigs()) {
		return
	}
	if err := b.opts.DynamicTLS.ReplaceTLS(next); err != nil {
		b.log.Error("the stored dynamic TLS configs do not load; the listeners keep what they serve", zap.Error(err))
		return
	}
	keys := make([]string, 0, len(next))
	for k := range next {
		keys = append(keys, k)
	}
	b.log.Info("dynamic TLS configs applied from the store", zap.Strings("configs", keys))
}

// syncDynamicTLS serves the dynamic TLS values the image holds for this
// broker when a record changed them (or on the first image).
func (b *Broker) syncDynamicTLS(im *metadata.Image, deltas []metadata.Delta, full bool) {
	if b.opts.DynamicTLS == nil {
		return
	}
	res := metadata.ConfigResource{Type: metadata.ResourceBroker, Name: strconv.Itoa(int(b.opts.NodeID))}
	changed := full
	for _, d := range deltas {
		for _, c := range d.ChangedConfigs {
			changed = changed || c == res
		}
	}
	if changed {
		b.applyStoredTLS(im.Configs(res))
	}
}

// alterTLS checks ops (full keys; nil: delete) against the listeners'
// served stores and, unless validateOnly, stores and serves them: on a
// single node DynamicTLS saves them (saveDynamicTLS) before serving; in a
// cluster they go to the controller as this broker's ConfigRecords and
// are served when replayed (syncDynamicTLS). A change that fails the
// check is INVALID_REQUEST, as Kafka's ConfigAdminManager answers a
// dynamic broker config that fails validation (KAFKA-13609 keeps that
// code).
func (b *Broker) alterTLS(ops map[string]*string, validateOnly bool) error {
	if err := b.secretRefused(ops); err != nil {
		return err
	}
	if b.opts.Cluster == nil {
		err := b.opts.DynamicTLS.AlterTLS(ops, validateOnly, b.saveDynamicTLS)
		var ke *kerr.Error
		if err != nil && !errors.As(err, &ke) {
			return fmt.Errorf("%w: %v", kerr.InvalidRequest, err)
		}
		return err
	}
	if err := b.opts.DynamicTLS.AlterTLS(ops, true, nil); err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidRequest, err)
	}
	if validateOnly {
		return nil
	}
	enc, err := b.encodeTLSValues(ops)
	if err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, strconv.Itoa(int(b.opts.NodeID))
	for k, v := range enc {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value, c.Op = k, v, kmsg.IncrementalAlterConfigOpSet
		if v == nil {
			c.Op = kmsg.IncrementalAlterConfigOpDelete
		}
		res.Configs = append(res.Configs, c)
	}
	req.Resources = append(req.Resources, res)
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	resp, err := b.opts.Cluster.Forward(ctx, req)
	if err != nil {
		return fmt.Errorf("%w: storing the change through the controller: %v", kerr.RequestTimedOut, err)
	}
	r, ok := resp.(*kmsg.IncrementalAlterConfigsResponse)
	if !ok || len(r.Resources) != 1 {
		return fmt.Errorf("%w: unexpected controller answer %T", kerr.UnknownServerError, resp)
	}
	if code := r.Resources[0].ErrorCode; code != 0 {
		msg := ""
		if m := r.Resources[0].ErrorMessage; m != nil {
			msg = *m
		}
		return fmt.Errorf("%w: %s", kerr.ErrorForCode(code), msg)
	}
	return nil
}
