package config

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"github.com/ringbroker/ringbroker/auth/sslprincipal"
)

// TLS keys (issue 19): Kafka's ssl.* keys, each also per listener with
// the listener.name.<l>. prefix (the listener's own value wins), for SSL
// and SASL_SSL listeners. Only PEM key and trust stores are served (Go's
// crypto/tls reads PEM; JKS and PKCS12 are Java formats).

// SSL client authentication modes (ssl.client.auth).
const (
	SSLClientAuthNone      = "none"
	SSLClientAuthRequested = "requested"
	SSLClientAuthRequired  = "required"
)

// sslKeyDefaults are the ssl.* keys taken, with Kafka's defaults.
var sslKeyDefaults = map[string]string{
	"ssl.keystore.type":                     "JKS",
	"ssl.keystore.location":                 "",
	"ssl.keystore.password":                 "",
	"ssl.keystore.certificate.chain":        "",
	"ssl.keystore.key":                      "",
	"ssl.key.password":                      "",
	"ssl.truststore.type":                   "JKS",
	"ssl.truststore.location":               "",
	"ssl.truststore.password":               "",
	"ssl.truststore.certificates":           "",
	"ssl.protocol":                          "TLSv1.3",
	"ssl.enabled.protocols":                 "TLSv1.2,TLSv1.3",
	"ssl.cipher.suites":                     "",
	"ssl.client.auth":                       SSLClientAuthNone,
	"ssl.principal.mapping.rules":           sslprincipal.Default,
	"ssl.endpoint.identification.algorithm": "https",
	"ssl.allow.dn.changes":                  "false",
	"ssl.allow.san.changes":                 "false",
}

// sslSensitive are the keys whose values are secrets: hidden by Print
// and DescribeConfigs.
var sslSensitive = map[string]bool{
	"ssl.keystore.password":   true,
	"ssl.keystore.key":        true,
	"ssl.key.password":        true,
	"ssl.truststore.password": true,
}

var sslDocs = map[string]string{
	"ssl.keystore.type":                     "Format of the key store. Only `PEM` is served (Go's TLS reads PEM; Kafka's default JKS and PKCS12 are Java formats): an SSL or SASL_SSL listener must set it.",
	"ssl.keystore.location":                 "PEM file holding the listener's certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC 1, or encrypted PKCS#8 with `ssl.key.password`). Re-read when it changes (`ring.ssl.reload.interval.ms`).",
	"ssl.keystore.password":                 "Password of a JKS/PKCS12 key store. Not used with PEM: setting it on a PEM listener is refused, as Kafka does.",
	"ssl.keystore.certificate.chain":        "The certificate chain in PEM, inline (instead of `ssl.keystore.location`).",
	"ssl.keystore.key":                      "The private key in PEM, inline, with `ssl.keystore.certificate.chain`.",
	"ssl.key.password":                      "Password of an encrypted PKCS#8 private key (`ENCRYPTED PRIVATE KEY`, PBES2 with PBKDF2 and AES-CBC, as `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes). A wrong password, or a key in another scheme (PBES1, 3DES, legacy `Proc-Type` PEM encryption), is refused at start with the reason; set on an unencrypted key it is refused too.",
	"ssl.truststore.type":                   "Format of the trust store; only `PEM` is served. Needed when a listener checks client certificates (`ssl.client.auth` requested or required).",
	"ssl.truststore.location":               "PEM file of CA certificates that client certificates must chain to, and, on the inter-broker listener, that other brokers' certificates must chain to (empty there: the system's roots). Re-read when it changes.",
	"ssl.truststore.password":               "Password of a JKS/PKCS12 trust store; not used with PEM.",
	"ssl.truststore.certificates":           "CA certificates in PEM, inline (instead of `ssl.truststore.location`).",
	"ssl.protocol":                          "Kafka's SSLContext protocol. Checked (TLSv1.2 or TLSv1.3) and otherwise unused: the versions offered are `ssl.enabled.protocols`.",
	"ssl.enabled.protocols":                 "TLS versions a listener accepts: TLSv1.2 and/or TLSv1.3.",
	"ssl.cipher.suites":                     "TLS 1.2 cipher suites (IANA names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256); empty: Go's secure defaults. TLS 1.3 suites are not configurable in Go.",
	"ssl.client.auth":                       "Client certificates: `none`, `requested` (checked if sent) or `required` (a missing, untrusted or expired certificate fails the handshake). A verified certificate names the principal on SSL listeners. On a SASL_SSL listener only `listener.name.<name>.ssl.client.auth` counts (KIP-684).",
	"ssl.principal.mapping.rules":           "Maps a client certificate's subject (RFC 2253, `CN=...,OU=...,O=...`) to the principal `User:<name>`: Kafka's `RULE:pattern/replacement/[L|U]` list and `DEFAULT`. Patterns are Go regular expressions. A subject no rule maps is refused.",
	"ssl.allow.dn.changes":                  "Whether a key store set through IncrementalAlterConfigs may carry a certificate with another subject (distinguished name) than the one served. `false` (Kafka's default): such a change is refused (INVALID_REQUEST) and nothing changes. Read from server.properties (with or without the listener prefix); not itself dynamic, as in Kafka.",
	"ssl.allow.san.changes":                 "Whether a key store set through IncrementalAlterConfigs may drop subject alternative names of the certificate served. `false` (Kafka's default): the new certificate must name at least every SAN of the served one (adding names is allowed, as in Kafka), else INVALID_REQUEST and nothing changes. Read from server.properties; not itself dynamic.",
	"ssl.endpoint.identification.algorithm": "Host name checking on ringbroker's own TLS client side (replica fetchers and transaction markers dialing an SSL `inter.broker.listener.name`): `https` checks that the other broker's certificate names the host it is dialed at; empty checks only that it chains to the trust store.",
}

// TLSLimits are ringbroker's own TLS settings (process-wide).
type TLSLimits struct {
	ReloadIntervalMs   int  // ring.ssl.reload.interval.ms
	HandshakeTimeoutMs int  // ring.ssl.handshake.timeout.ms
	MaxHandshaking     int  // ring.ssl.max.handshaking
	OnLoops            bool // ring.ssl.loop.enable
	SendZC             bool // ring.ssl.loop.send.zerocopy.enable
}

func sslSpecs() []spec {
	names := make([]string, 0, len(sslKeyDefaults))
	for k := range sslKeyDefaults {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]spec, 0, len(names)+5)
	for _, name := range names {
		typ := TypeString
		switch name {
		case "ssl.enabled.protocols", "ssl.cipher.suites":
			typ = TypeList
		case "ssl.allow.dn.changes", "ssl.allow.san.changes":
			typ = TypeBoolean
		}
		out = append(out, spec{name: name, def: sslKeyDefaults[name], typ: typ, doc: sslDocs[name], sensitive: sslSensitive[name],
			set: func(c *Config, v string) error {
				if err := checkSSLValue(name, v); err != nil {
					return err
				}
				if c.ssl == nil {
					c.ssl = map[string]string{}
				}
				c.ssl[name] = strings.TrimSpace(v)
				return nil
			},
			get: func(c *Config) string { return c.ssl[name] }})
	}
	out = append(out,
		oursInt("ring.ssl.reload.interval.ms", "30000", 10, kafkaIntMax, "How often TLS listeners check their key store and trust store files for changes (size, time and content); a changed file is loaded for new connections, a bad one keeps the old certificates and logs why.", func(c *Config) *int { return &c.TLS.ReloadIntervalMs }),
		oursInt("ring.ssl.handshake.timeout.ms", "10000", 1, kafkaIntMax, "A TLS handshake not finished within this is closed.", func(c *Config) *int { return &c.TLS.HandshakeTimeoutMs }),
		oursInt("ring.ssl.max.handshaking", "1000", 1, kafkaIntMax, "TLS handshakes in progress per process; a connection over it is closed at accept.", func(c *Config) *int { return &c.TLS.MaxHandshaking }),
		oursBool("ring.ssl.loop.enable", "true", "With io_uring, serve a TLS 1.3 connection (AES-GCM or ChaCha20-Poly1305) on the ring loops once its handshake is done: records decrypted in place in the receive buffers, responses encrypted by the loop, no goroutine per connection. TLS 1.2 connections, and all of them when false, are served by a reader and a writer goroutine each.", func(c *Config) *bool { return &c.TLS.OnLoops }),
		oursBool("ring.ssl.loop.send.zerocopy.enable", "false", "With ring.ssl.loop.enable, each ring loop registers 8 send buffers of 532 KiB with its ring (off-heap, locked in memory), encrypts TLS records into them and sends them with zero-copy sends (IORING_OP_SEND_ZC; plain sends from the same buffers where the kernel refuses zero-copy on the socket); a connection waits for a free buffer, so 8 clients of a loop that stop reading stall that loop's other TLS responses until they read or close. Falls back to heap buffers, with a log line, where the kernel lacks SEND_ZC or the registration fails (RLIMIT_MEMLOCK).", func(c *Config) *bool { return &c.TLS.SendZC }),
	)
	return out
}

// checkSSLValue validates what can be checked of one ssl.* value alone.
func checkSSLValue(key, v string) error {
	v = strings.TrimSpace(v)
	switch key {
	case "ssl.enabled.protocols":
		for _, p := range splitList(v) {
			if _, ok := tlsVersions[p]; !ok {
				return fmt.Errorf("TLS version %s is not served (served: TLSv1.2, TLSv1.3)", p)
			}
		}
	case "ssl.protocol":
		if _, ok := tlsVersions[v]; !ok && v != "TLS" {
			return fmt.Errorf("%s: want TLSv1.2 or TLSv1.3", v)
		}
	case "ssl.cipher.suites":
		for _, s := range splitList(v) {
			if _, err := CipherSuiteID(s); err != nil {
				return err
			}
		}
	case "ssl.client.auth":
		switch v {
		case SSLClientAuthNone, SSLClientAuthRequested, SSLClientAuthRequired:
		default:
			return fmt.Errorf("%q: want none, requested or required", v)
		}
	case "ssl.principal.mapping.rules":
		if _, err := sslprincipal.Parse(v); err != nil {
			return err
		}
	case "ssl.endpoint.identification.algorithm":
		if v != "" && !strings.EqualFold(v, "https") {
			return fmt.Errorf("%q: want https or empty", v)
		}
	case "ssl.allow.dn.changes", "ssl.allow.san.changes":
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return fmt.Errorf("%q: want true or false", v)
		}
	case "ssl.keystore.type", "ssl.truststore.type":
		switch strings.ToUpper(v) {
		case "PEM", "JKS", "PKCS12":
		default:
			return fmt.Errorf("%q: want PEM (JKS and PKCS12 are Kafka's other types, not served)", v)
		}
	}
	return nil
}

var tlsVersions = map[string]uint16{"TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13}

// CipherSuiteID is the crypto/tls id of a cipher suite's IANA name (the
// names Java and Kafka use). Insecure suites are refused.
func CipherSuiteID(name string) (uint16, error) {
	for _, s := range tls.CipherSuites() {
		if s.Name == name {
			return s.ID, nil
		}
	}
	for _, s := range tls.InsecureCipherSuites() {
		if s.Name == name {
			return 0, fmt.Errorf("cipher suite %s is insecure and not served", name)
		}
	}
	return 0, fmt.Errorf("unknown cipher suite %s (IANA names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)", name)
}

// SSLSettings are one listener's TLS settings, each its
// listener.name.<l>.ssl.* value if set, else the ssl.* value.
type SSLSettings struct {
	Listener                 string
	KeystoreLocation         string
	KeystoreCertificateChain string
	KeystoreKey              string
	KeyPassword              string
	TruststoreLocation       string
	TruststoreCertificates   string
	MinVersion, MaxVersion   uint16
	CipherSuites             []uint16
	ClientAuth               string
	PrincipalMappingRules    string
	// EndpointIdentification is ssl.endpoint.identification.algorithm:
	// "https" checks the host name of the broker ringbroker's own client
	// side connects to; "" does not (the chain is still checked).
	EndpointIdentification string
	// AllowDNChanges and AllowSANChanges are ssl.allow.dn.changes and
	// ssl.allow.san.changes: whether a dynamic key store update may change
	// the certificate's subject, or drop alternative names.
	AllowDNChanges, AllowSANChanges bool
}

// sslValueWith is sslValue with dynamic overrides (full
// listener.name.<l>.ssl.* keys) taking precedence; own reports whether the
// listener has its own value (an override or a prefixed key).
func (c *Config) sslValueWith(overrides map[string]string, listener, key string) (v string, own bool) {
	if v, ok := overrides[ListenerKey(listener, key)]; ok {
		return strings.TrimSpace(v), true
	}
	if v, ok := c.listenerKeys[ListenerKey(listener, key)]; ok {
		return strings.TrimSpace(v), true
	}
	return c.ssl[key], false
}

// DynamicSSLKeys are the ssl.* keys of a listener that
// IncrementalAlterConfigs may change at run time on this broker (Kafka's
// reconfigurable SslFactory keys of a PEM listener), each only with the
// listener.name.<l>. prefix, as Kafka's DynamicBrokerConfig wants.
var DynamicSSLKeys = map[string]bool{
	"ssl.keystore.type":              true,
	"ssl.keystore.location":          true,
	"ssl.keystore.certificate.chain": true,
	"ssl.keystore.key":               true,
	"ssl.key.password":               true,
	"ssl.truststore.type":            true,
	"ssl.truststore.location":        true,
	"ssl.truststore.certificates":    true,
}

// DynamicSSLKey splits a listener.name.<l>.ssl.* key IncrementalAlterConfigs
// may change (DynamicSSLKeys) into the listener (upper case) and the ssl.*
// key; ok is false for any other key.
func DynamicSSLKey(key string) (listener, sslKey string, ok bool) {
	rest, found := strings.CutPrefix(key, listenerPrefix)
	if !found {
		return "", "", false
	}
	name, suffix, found := strings.Cut(rest, ".")
	if !found || name == "" || !DynamicSSLKeys[suffix] {
		return "", "", false
	}
	return strings.ToUpper(name), suffix, true
}

// SSLWith is SSL with dynamic overrides: full listener.name.<l>.ssl.*
// keys and their values, which take precedence over server.properties.
func (c *Config) SSLWith(listener string, overrides map[string]string) (SSLSettings, error) {
	for k, v := range overrides {
		_, key, ok := DynamicSSLKey(k)
		if !ok {
			return SSLSettings{}, fmt.Errorf("%s cannot be updated dynamically", k)
		}
		if err := checkSSLValue(key, v); err != nil {
			return SSLSettings{}, fmt.Errorf("%s: %w", k, err)
		}
	}
	return c.sslWith(listener, overrides)
}

// SSL returns listener's TLS settings, checked: a PEM key store (a file,
// or inline chain and key), a PEM trust store when client certificates
// are checked, versions, suites, client auth and mapping rules.
func (c *Config) SSL(listener string) (SSLSettings, error) { return c.sslWith(listener, nil) }

func (c *Config) sslWith(listener string, overrides map[string]string) (SSLSettings, error) {
	key := func(k string) string { return ListenerKey(listener, k) + " (or " + k + ")" }
	value := func(k string) string {
		v, _ := c.sslValueWith(overrides, listener, k)
		return v
	}
	s := SSLSettings{Listener: listener,
		KeystoreLocation:         value("ssl.keystore.location"),
		KeystoreCertificateChain: value("ssl.keystore.certificate.chain"),
		KeystoreKey:              value("ssl.keystore.key"),
		KeyPassword:              value("ssl.key.password"),
		TruststoreLocation:       value("ssl.truststore.location"),
		TruststoreCertificates:   value("ssl.truststore.certificates"),
		ClientAuth:               value("ssl.client.auth"),
		PrincipalMappingRules:    value("ssl.principal.mapping.rules"),
		EndpointIdentification:   strings.ToLower(value("ssl.endpoint.identification.algorithm")),
	}
	// KIP-684: on a SASL_SSL listener only the listener's own
	// ssl.client.auth counts; the unprefixed key applies to SSL listeners.
	if c.ListenerProtocol(listener) == ProtocolSASLSSL {
		if _, own := c.sslValueWith(overrides, listener, "ssl.client.auth"); !own {
			s.ClientAuth = SSLClientAuthNone
		}
	}
	for _, k := range []string{"ssl.enabled.protocols", "ssl.cipher.suites", "ssl.client.auth", "ssl.principal.mapping.rules", "ssl.protocol", "ssl.endpoint.identification.algorithm", "ssl.keystore.type", "ssl.truststore.type", "ssl.allow.dn.changes", "ssl.allow.san.changes"} {
		if err := checkSSLValue(k, value(k)); err != nil {
			return s, fmt.Errorf("%s: %w", key(k), err)
		}
	}
	s.AllowDNChanges = strings.EqualFold(value("ssl.allow.dn.changes"), "true")
	s.AllowSANChanges = strings.EqualFold(value("ssl.allow.san.changes"), "true")
	if t := strings.ToUpper(value("ssl.keystore.type")); t != "PEM" {
		return s, fmt.Errorf("listener %s: %s is %s; only PEM key stores are served: set it to PEM", listener, key("ssl.keystore.type"), t)
	}
	if value("ssl.keystore.password") != "" {
		return s, fmt.Errorf("listener %s: %s is not used with a PEM key store (an encrypted key takes ssl.key.password)", listener, key("ssl.keystore.password"))
	}
	switch {
	case s.KeystoreLocation != "" && (s.KeystoreCertificateChain != "" || s.KeystoreKey != ""):
		return s, fmt.Errorf("listener %s: set either %s or %s with %s, not both", listener, key("ssl.keystore.location"), key("ssl.keystore.certificate.chain"), key("ssl.keystore.key"))
	case s.KeystoreLocation == "" && (s.KeystoreCertificateChain == "" || s.KeystoreKey == ""):
		return s, fmt.Errorf("listener %s: no certificate: set %s, or %s and %s", listener, key("ssl.keystore.location"), key("ssl.keystore.certificate.chain"), key("ssl.keystore.key"))
	}
	if s.ClientAuth != SSLClientAuthNone {
		if t := strings.ToUpper(value("ssl.truststore.type")); t != "PEM" {
			return s, fmt.Errorf("listener %s: ssl.client.auth=%s needs a PEM trust store: set %s to PEM", listener, s.ClientAuth, key("ssl.truststore.type"))
		}
		if s.TruststoreLocation == "" && s.TruststoreCertificates == "" {
			return s, fmt.Errorf("listener %s: ssl.client.auth=%s needs CA certificates: set %s or %s", listener, s.ClientAuth, key("ssl.truststore.location"), key("ssl.truststore.certificates"))
		}
		if s.TruststoreLocation != "" && s.TruststoreCertificates != "" {
			return s, fmt.Errorf("listener %s: set either %s or %s, not both", listener, key("ssl.truststore.location"), key("ssl.truststore.certificates"))
		}
	}
	if value("ssl.truststore.password") != "" {
		return s, fmt.Errorf("listener %s: %s is not used with a PEM trust store", listener, key("ssl.truststore.password"))
	}
	for _, p := range splitList(value("ssl.enabled.protocols")) {
		v := tlsVersions[p]
		if s.MinVersion == 0 || v < s.MinVersion {
			s.MinVersion = v
		}
		s.MaxVersion = max(s.MaxVersion, v)
	}
	if s.MinVersion == 0 {
		return s, fmt.Errorf("listener %s: %s is empty", listener, key("ssl.enabled.protocols"))
	}
	for _, n := range splitList(value("ssl.cipher.suites")) {
		id, _ := CipherSuiteID(n)
		s.CipherSuites = append(s.CipherSuites, id)
	}
	return s, nil
}

// sslListenerKey reports whether suffix (after listener.name.<l>.) is an
// ssl.* key taken per listener.
func sslListenerKey(suffix string) bool {
	_, ok := sslKeyDefaults[suffix]
	return ok
}

// isTLSProtocol reports whether a security protocol runs over TLS.
func isTLSProtocol(p string) bool { return p == ProtocolSSL || p == ProtocolSASLSSL }

// IsSASLProtocol reports whether a security protocol authenticates with SASL.
func IsSASLProtocol(p string) bool { return p == ProtocolSASLPlaintext || p == ProtocolSASLSSL }
