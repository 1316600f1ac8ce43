// Package tlsstore builds a TLS listener's crypto/tls configuration from
// Kafka's ssl.* settings (PEM key store and trust store, versions, cipher
// suites, client authentication) and reloads it when its files change.
//
// Reload: Watcher reads the key store and trust store files every
// interval and compares a SHA-256 of their contents with what it serves
// (contents, not modification times: a rewrite within one mtime tick, or a
// rename over the file, is seen too; a touch alone reloads nothing). A
// changed set is loaded whole; if it loads, new connections get it (the target's SetConfig) and
// connections already open keep theirs; if it does not (a half-written
// file, a key that does not match its certificate), the old configuration
// stays and the error is logged, once per distinct failure.
package tlsstore

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/config"
)

// maxFileBytes bounds a key store or trust store file.
const maxFileBytes = 16 << 20

// Load builds the tls.Config of s, reading its files.
func Load(s config.SSLSettings) (*tls.Config, error) {
	cfg, _, err := load(s)
	return cfg, err
}

// load is Load that also returns the fingerprint of the files it read.
func load(s config.SSLSettings) (*tls.Config, [sha256.Size]byte, error) {
	var fp [sha256.Size]byte
	h := sha256.New()
	read := func(path string) ([]byte, error) {
		b, err := readBounded(path)
		h.Write(b)
		return b, err
	}
	chain, key := []byte(s.KeystoreCertificateChain), []byte(s.KeystoreKey)
	where := "ssl.keystore.certificate.chain/ssl.keystore.key"
	if s.KeystoreLocation != "" {
		b, err := read(s.KeystoreLocation)
		if err != nil {
			return nil, fp, fmt.Errorf("ssl.keystore.location: %w", err)
		}
		chain, key, where = b, b, s.KeystoreLocation
	}
	cert, err := keyPair(chain, key, s.KeyPassword)
	if err != nil {
		return nil, fp, fmt.Errorf("listener %s key store (%s): %w", s.Listener, where, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   s.MinVersion,
		MaxVersion:   s.MaxVersion,
		CipherSuites: s.CipherSuites,
	}
	switch s.ClientAuth {
	case config.SSLClientAuthRequired:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case config.SSLClientAuthRequested:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	default:
		cfg.ClientAuth = tls.NoClientCert
	}
	trust := []byte(s.TruststoreCertificates)
	where = "ssl.truststore.certificates"
	if s.TruststoreLocation != "" {
		b, err := read(s.TruststoreLocation)
		if err != nil {
			return nil, fp, fmt.Errorf("ssl.truststore.location: %w", err)
		}
		trust, where = b, s.TruststoreLocation
	}
	if len(bytes.TrimSpace(trust)) > 0 {
		pool, err := certPool(trust)
		if err != nil {
			return nil, fp, fmt.Errorf("listener %s trust store (%s): %w", s.Listener, where, err)
		}
		cfg.ClientCAs = pool
	} else if cfg.ClientAuth != tls.NoClientCert {
		return nil, fp, fmt.Errorf("listener %s: ssl.client.auth=%s without CA certificates", s.Listener, s.ClientAuth)
	}
	copy(fp[:], h.Sum(nil))
	return cfg, fp, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxFileBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, st.Size(), maxFileBytes)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// keyPair reads the certificate chain (CERTIFICATE blocks, leaf first)
// from chainPEM and the private key from keyPEM (they may be one file).
// An encrypted PKCS#8 key ("ENCRYPTED PRIVATE KEY", PBES2) is decrypted
// with password (pkcs8.go), as Kafka's PEM key store does with
// ssl.key.password; legacy PEM encryption ("Proc-Type: 4,ENCRYPTED",
// deprecated and weak) is refused with the command that converts it.
func keyPair(chainPEM, keyPEM []byte, password string) (tls.Certificate, error) {
	var certs []byte
	rest := chainPEM
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			certs = append(certs, pem.EncodeToMemory(b)...)
			n++
		}
	}
	if n == 0 {
		return tls.Certificate{}, errors.New("no CERTIFICATE block")
	}
	var keyBlock *pem.Block
	encrypted := false
	rest = keyPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Headers["Proc-Type"] != "":
			return tls.Certificate{}, errors.New("the private key uses legacy PEM encryption (Proc-Type), which is not served: convert it to encrypted PKCS#8, e.g. `openssl pkcs8 -topk8 -v2 aes-256-cbc -in key.pem -out key-pkcs8.pem`, and set ssl.key.password")
		case b.Type == "ENCRYPTED PRIVATE KEY":
			if keyBlock != nil {
				continue
			}
			if password == "" {
				return tls.Certificate{}, errors.New("the private key is encrypted: set ssl.key.password")
			}
			plain, err := decryptPKCS8(b.Bytes, password, pbkdf2IterationsMax)
			if err != nil {
				return tls.Certificate{}, err
			}
			keyBlock, encrypted = &pem.Block{Type: "PRIVATE KEY", Bytes: plain}, true
		case b.Type == "PRIVATE KEY" || b.Type == "RSA PRIVATE KEY" || b.Type == "EC PRIVATE KEY":
			if keyBlock == nil {
				keyBlock = b
			}
		}
	}
	if keyBlock == nil {
		return tls.Certificate{}, errors.New("no PRIVATE KEY block")
	}
	if password != "" && !encrypted {
		return tls.Certificate{}, errors.New("ssl.key.password is set but the private key is not encrypted: remove ssl.key.password")
	}
	cert, err := tls.X509KeyPair(certs, pem.EncodeToMemory(keyBlock))
	if err != nil {
		return tls.Certificate{}, err
	}
	return cert, nil
}

func certPool(trust []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	rest := trust
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no CERTIFICATE block")
	}
	return pool, nil
}

// Target receives reloaded configurations (netpoll.GoTLS).
type Target interface {
	SetConfig(*tls.Config)
}

// Watcher reloads one listener's configuration when its files change.
type Watcher struct {
	s      config.SSLSettings
	target Target
	log    *zap.Logger

	mu      sync.Mutex
	fp      [32]byte      // contents of the files of the configuration served
	served  *tls.Config   // the configuration served
	lastErr string        // last reload failure logged
	stop    chan struct{} // closed by Close
	done    chan struct{} // closed when polling ended (or never began)
	started bool          // Start was called (owner's goroutine only)
}

// NewWatcher loads s (an error if it does not load) into target and
// returns a Watcher for its files; Start begins polling.
func NewWatcher(s config.SSLSettings, target Target, log *zap.Logger) (*Watcher, *tls.Config, error) {
	cfg, fp, err := load(s)
	if err != nil {
		return nil, nil, err
	}
	w := &Watcher{s: s, target: target, log: log, fp: fp, served: cfg, stop: make(chan struct{}), done: make(chan struct{})}
	warnExpiry(log, s.Listener, cfg)
	return w, cfg, nil
}

// Start polls every interval until Close. A Watcher without files (inline
// PEM) polls too (its check reads nothing): IncrementalAlterConfigs may
// give it files (Prepare, Commit).
func (w *Watcher) Start(interval time.Duration) {
	w.started = true
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.Check()
			}
		}
	}()
}

// Close stops polling.
func (w *Watcher) Close() {
	close(w.stop)
	if w.started {
		<-w.done
	}
}

// pathsLocked are the files of the settings served. REQUIRES: w.mu held.
func (w *Watcher) pathsLocked() []string {
	var out []string
	for _, p := range []string{w.s.KeystoreLocation, w.s.TruststoreLocation} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// contentHash is the SHA-256 of the files' contents, in load's order.
// REQUIRES: w.mu held.
func (w *Watcher) contentHash() ([32]byte, error) {
	h := sha256.New()
	var fp [32]byte
	for _, p := range w.pathsLocked() {
		b, err := readBounded(p)
		if err != nil {
			return fp, err
		}
		h.Write(b)
	}
	copy(fp[:], h.Sum(nil))
	return fp, nil
}

// Check reads the files once and, when their contents differ from the
// configuration served, loads them: on success the target gets the new
// configuration (reported true); on failure the old one stays and the
// error is logged (once per distinct error; the next check tries again,
// the writer may be half-way through).
func (w *Watcher) Check() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	fp, err := w.contentHash()
	if err == nil && fp == w.fp {
		return false
	}
	var cfg *tls.Config
	if err == nil {
		cfg, fp, err = load(w.s)
	}
	if err != nil {
		if msg := err.Error(); msg != w.lastErr {
			w.lastErr = msg
			w.log.Error("TLS certificate reload failed; keeping the certificates loaded before", zap.String("listener", w.s.Listener), zap.Error(err))
		}
		return false
	}
	w.lastErr = ""
	w.fp, w.served = fp, cfg
	w.target.SetConfig(cfg)
	w.log.Info("TLS certificates reloaded", zap.String("listener", w.s.Listener), zap.Strings("files", w.pathsLocked()))
	warnExpiry(w.log, w.s.Listener, cfg)
	return true
}

// warnExpiry logs a server certificate that is expired or not yet valid
// (it is served anyway: clients decide).
func warnExpiry(log *zap.Logger, listener string, cfg *tls.Config) {
	if len(cfg.Certificates) == 0 || cfg.Certificates[0].Leaf == nil {
		return
	}
	leaf := cfg.Certificates[0].Leaf
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		log.Warn("TLS server certificate is outside its validity period", zap.String("listener", listener),
			zap.Time("not_before", leaf.NotBefore), zap.Time("not_after", leaf.NotAfter))
	}
}

// Settings are the settings the watcher serves.
func (w *Watcher) Settings() config.SSLSettings {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.s
}

// Prepare loads s as a replacement of what w serves (Kafka's
// SslFactory.validateReconfiguration): it must load, and its certificate
// must name the same subject as the one served unless s.AllowDNChanges
// (ssl.allow.dn.changes), and at least every subject alternative name of
// the one served unless s.AllowSANChanges (ssl.allow.san.changes); both
// false by default, as in Kafka. Nothing changes until Commit.
func (w *Watcher) Prepare(s config.SSLSettings) (*Replacement, error) {
	cfg, fp, err := load(s)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	cur := w.served
	w.mu.Unlock()
	if err := compatibleIdentity(cur.Certificates[0].Leaf, cfg.Certificates[0].Leaf, s.AllowDNChanges, s.AllowSANChanges); err != nil {
		return nil, err
	}
	return &Replacement{w: w, s: s, cfg: cfg, fp: fp}, nil
}

// Replacement is a loaded, checked configuration waiting for Commit.
type Replacement struct {
	w   *Watcher
	s   config.SSLSettings
	cfg *tls.Config
	fp  [32]byte
}

// Commit serves the replacement to new connections (open ones keep
// theirs) and has the watcher poll its files from now on.
func (r *Replacement) Commit() {
	w := r.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.s, w.fp, w.lastErr, w.served = r.s, r.fp, "", r.cfg
	w.target.SetConfig(r.cfg)
	w.log.Info("TLS configuration replaced (IncrementalAlterConfigs)", zap.String("listener", r.s.Listener), zap.Strings("files", w.pathsLocked()))
	warnExpiry(w.log, r.s.Listener, r.cfg)
}

// compatibleIdentity is Kafka's CertificateEntries.ensureCompatible: unless
// allowDN, the new leaf names the same subject (byte for byte, or the
// same RFC 2253 string ignoring case, as Kafka compares X500Principals);
// unless allowSAN, it names every alternative name the old one does
// (Kafka's containsAll: names may be added, not dropped).
func compatibleIdentity(old, next *x509.Certificate, allowDN, allowSAN bool) error {
	if old == nil || next == nil {
		return nil
	}
	if !allowDN && !bytes.Equal(old.RawSubject, next.RawSubject) && !strings.EqualFold(old.Subject.String(), next.Subject.String()) {
		return fmt.Errorf("keystore DistinguishedName does not match: existing={DN=%s}, new={DN=%s} (ssl.allow.dn.changes=false)", old.Subject, next.Subject)
	}
	if !allowSAN {
		have := sanList(next)
		for _, n := range sanList(old) {
			if _, found := slices.BinarySearch(have, n); !found {
				return fmt.Errorf("keystore SubjectAltNames do not match: existing={SAN=%v}, new={SAN=%v} (ssl.allow.san.changes=false)", sanList(old), have)
			}
		}
	}
	return nil
}

func sanList(c *x509.Certificate) []string {
	var out []string
	for _, n := range c.DNSNames {
		out = append(out, "DNS:"+n)
	}
	for _, n := range c.EmailAddresses {
		out = append(out, "email:"+n)
	}
	for _, ip := range c.IPAddresses {
		out = append(out, "IP:"+ip.String())
	}
	for _, u := range c.URIs {
		out = append(out, "URI:"+u.String())
	}
	slices.Sort(out)
	return out
}
