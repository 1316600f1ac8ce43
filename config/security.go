package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ringbroker/ringbroker/auth/acl"
)

// Security keys (issue 19): SASL on listeners, the authorizer. Kafka's keys
// and defaults; per-listener settings take Kafka's prefix
// listener.name.<listener name, lower case>. (ListenerKey).

// PasswordEncoderSettings are the password.encoder.* keys (auth/pwenc).
type PasswordEncoderSettings struct {
	Secret, OldSecret     string
	Cipher, KeyFactory    string
	KeyLength, Iterations int
}

// Security protocols of listener.security.protocol.map.
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

// StandardAuthorizer is the authorizer.class.name that turns authorization
// on (Kafka's KRaft authorizer); empty leaves it off.
const StandardAuthorizer = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"

// listenerPrefix starts a per-listener key.
const listenerPrefix = "listener.name."

// saslMechanismsServed are the mechanisms a SASL listener may enable.
var saslMechanismsServed = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"}

// OAUTHBEARER validators a listener may name in
// listener.name.<l>.oauthbearer.sasl.server.callback.handler.class:
// Kafka's JWKS-verifying validator, and its unsecured one for development
// (tokens with alg "none", trusted as they are).
const (
	OAuthSecuredValidator   = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
	OAuthUnsecuredValidator = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler"
	oauthHandlerSuffix      = "oauthbearer.sasl.server.callback.handler.class"
)

var securitySpecs = append([]spec{
	{name: "sasl.enabled.mechanisms", def: "GSSAPI", typ: TypeList,
		doc: "SASL mechanisms a SASL_PLAINTEXT listener offers, in order (per listener: `listener.name.<name>.sasl.enabled.mechanisms`). Served: PLAIN (users from `listener.name.<name>.plain.sasl.jaas.config`), SCRAM-SHA-256, SCRAM-SHA-512 (credentials managed with AlterUserScramCredentials), OAUTHBEARER (JWTs verified with the keys of `sasl.oauthbearer.jwks.endpoint.url`). Kafka's default GSSAPI is not served: a SASL listener must name its mechanisms.",
		set: func(c *Config, v string) error {
			c.SaslEnabledMechanisms = splitList(v)
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.SaslEnabledMechanisms, ",") }},
	{name: "sasl.mechanism.inter.broker.protocol", def: "GSSAPI",
		doc: "The SASL mechanism this node's replica fetchers and transaction markers authenticate with when `inter.broker.listener.name` is a SASL_PLAINTEXT or SASL_SSL listener: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (one the listener enables), with the `username` and `password` options of that listener's `listener.name.<name>.<mechanism>.sasl.jaas.config`, as Kafka's brokers do. Kafka's default GSSAPI is not served: set it when the inter-broker listener is a SASL one.",
		set: func(c *Config, v string) error {
			c.SaslMechanismInterBroker = strings.ToUpper(strings.TrimSpace(v))
			return nil
		},
		get: func(c *Config) string { return c.SaslMechanismInterBroker }},
	{name: "password.encoder.secret", def: "", typ: TypePassword, sensitive: true,
		doc: "Secret from which the key that encrypts dynamic broker config secrets (a listener's `ssl.key.password` or `ssl.keystore.key` set with IncrementalAlterConfigs) is derived before they are stored (the metadata log in a cluster, the first log dir on a single node). Without it such a secret is refused (INVALID_CONFIG, \"Password encoder secret not configured\", as Kafka answered before KRaft; KRaft stores them in clear). Keep it the same across restarts; to rotate it, move the old one to `password.encoder.old.secret`.",
		set: func(c *Config, v string) error { c.PasswordEncoder.Secret = v; return nil },
		get: func(c *Config) string { return c.PasswordEncoder.Secret }},
	{name: "password.encoder.old.secret", def: "", typ: TypePassword, sensitive: true,
		doc: "The previous `password.encoder.secret`: stored secrets the current one does not decode are decoded with this one (and encoded with the new one when next changed).",
		set: func(c *Config, v string) error { c.PasswordEncoder.OldSecret = v; return nil },
		get: func(c *Config) string { return c.PasswordEncoder.OldSecret }},
	{name: "password.encoder.cipher.algorithm", def: "AES/CBC/PKCS5Padding",
		doc: "Cipher of stored dynamic secrets: `AES/CBC/PKCS5Padding` (Kafka's default) or `AES/GCM/NoPadding`. Each stored value names its own, so changing it affects new values only.",
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if v != "AES/CBC/PKCS5Padding" && v != "AES/GCM/NoPadding" {
				return fmt.Errorf("%q: want AES/CBC/PKCS5Padding or AES/GCM/NoPadding", v)
			}
			c.PasswordEncoder.Cipher = v
			return nil
		},
		get: func(c *Config) string { return c.PasswordEncoder.Cipher }},
	{name: "password.encoder.keyfactory.algorithm", def: "",
		doc: "Key derivation of stored dynamic secrets: `PBKDF2WithHmacSHA512` (empty: the default, as Kafka's), `PBKDF2WithHmacSHA256` or `PBKDF2WithHmacSHA1`.",
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			switch v {
			case "", "PBKDF2WithHmacSHA512", "PBKDF2WithHmacSHA256", "PBKDF2WithHmacSHA1":
			default:
				return fmt.Errorf("%q: want PBKDF2WithHmacSHA512, PBKDF2WithHmacSHA256 or PBKDF2WithHmacSHA1", v)
			}
			c.PasswordEncoder.KeyFactory = v
			return nil
		},
		get: func(c *Config) string { return c.PasswordEncoder.KeyFactory }},
	{name: "password.encoder.key.length", def: "128", typ: TypeInt,
		doc: "AES key length in bits of stored dynamic secrets: 128, 192 or 256.",
		set: func(c *Config, v string) error {
			n, err := parseInt(v, 128, 256)
			if err != nil {
				return err
			}
			if n != 128 && n != 192 && n != 256 {
				return fmt.Errorf("%d: AES takes 128, 192 or 256 bits", n)
			}
			c.PasswordEncoder.KeyLength = int(n)
			return nil
		},
		get: func(c *Config) string { return fmt.Sprint(c.PasswordEncoder.KeyLength) }},
	intSpec("password.encoder.iterations", "4096", 1024, 1<<20, "PBKDF2 iterations for the key of stored dynamic secrets.", func(c *Config) *int { return &c.PasswordEncoder.Iterations }),
	intSpec("connection.failed.authentication.delay.ms", "100", 0, kafkaIntMax, "Delay before the answer to a failed SASL authentication is sent and the connection closed (a timer: no ring thread waits).", func(c *Config) *int { return &c.ConnectionFailedAuthenticationDelayMs }),
	intSpec("connections.max.reauth.ms", "0", 0, math.MaxInt64, "Session lifetime of a SASL connection (KIP-368): after it the client must re-authenticate or is disconnected. 0: sessions do not expire.", func(c *Config) *int64 { return &c.ConnectionsMaxReauthMs }),
	intSpec("sasl.server.max.receive.size", "524288", 1, kafkaIntMax, "Largest frame accepted from a connection that has not authenticated yet; a bigger one closes it.", func(c *Config) *int { return &c.SaslServerMaxReceiveSize }),
	oursInt("ring.conn.max.authenticating", "1000", 1, kafkaIntMax, "Connections on SASL listeners that have not yet authenticated, per process. A connection over it is closed at its first request.", func(c *Config) *int { return &c.ConnMaxAuthenticating }),
	{name: "authorizer.class.name", def: "",
		doc: "`" + StandardAuthorizer + "` turns ACL authorization on (ACLs managed with CreateAcls/DeleteAcls, stored in the first log dir); empty: no authorization, every request is allowed.",
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			switch v {
			case "", StandardAuthorizer:
			case "kafka.security.authorizer.AclAuthorizer":
				return fmt.Errorf("%s is ZooKeeper's authorizer; use %s", v, StandardAuthorizer)
			default:
				return fmt.Errorf("unknown authorizer %s (served: %s)", v, StandardAuthorizer)
			}
			c.AuthorizerClassName = v
			return nil
		},
		get: func(c *Config) string { return c.AuthorizerClassName }},
	{name: "super.users", def: "",
		doc: "Principals allowed everything whatever the ACLs say, separated by `;` (`User:admin;User:ops`).",
		set: func(c *Config, v string) error {
			if _, err := acl.ParseSuperUsers(v); err != nil {
				return err
			}
			c.SuperUsers = strings.TrimSpace(v)
			return nil
		},
		get: func(c *Config) string { return c.SuperUsers }},
	{name: "sasl.oauthbearer.jwks.endpoint.url", def: "",
		doc: "Where OAUTHBEARER's token-verifying keys (a JSON Web Key Set) are: a `file:` URL or a path, read at start (Kafka also fetches https URLs; ringbroker makes no outbound requests, so those are refused). Required by a listener enabling OAUTHBEARER unless it names the unsecured validator in `listener.name.<name>.oauthbearer.sasl.server.callback.handler.class` (`" + OAuthUnsecuredValidator + "`, for development only). Tokens must be RS256 or ES256 JWS with exp and iat.",
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if v != "" {
				if _, err := JWKSPath(v); err != nil {
					return err
				}
			}
			c.OAuthJWKSURL = v
			return nil
		},
		get: func(c *Config) string { return c.OAuthJWKSURL }},
	{name: "sasl.oauthbearer.expected.issuer", def: "",
		doc: "The iss an OAUTHBEARER token must carry; empty checks nothing.",
		set: func(c *Config, v string) error { c.OAuthIssuer = strings.TrimSpace(v); return nil },
		get: func(c *Config) string { return c.OAuthIssuer }},
	{name: "sasl.oauthbearer.expected.audience", def: "", typ: TypeList,
		doc: "Audiences an OAUTHBEARER token's aud must contain one of; empty checks nothing.",
		set: func(c *Config, v string) error { c.OAuthAudiences = splitList(v); return nil },
		get: func(c *Config) string { return strings.Join(c.OAuthAudiences, ",") }},
	{name: "sasl.oauthbearer.sub.claim.name", def: "sub",
		doc: "The claim holding an OAUTHBEARER token's principal name.",
		set: func(c *Config, v string) error {
			if v = strings.TrimSpace(v); v == "" {
				return fmt.Errorf("must not be empty")
			}
			c.OAuthSubClaim = v
			return nil
		},
		get: func(c *Config) string { return c.OAuthSubClaim }},
	{name: "sasl.oauthbearer.scope.claim.name", def: "scope",
		doc: "The claim holding an OAUTHBEARER token's scopes.",
		set: func(c *Config, v string) error {
			if v = strings.TrimSpace(v); v == "" {
				return fmt.Errorf("must not be empty")
			}
			c.OAuthScopeClaim = v
			return nil
		},
		get: func(c *Config) string { return c.OAuthScopeClaim }},
	intSpec("sasl.oauthbearer.clock.skew.seconds", "30", 0, kafkaIntMax, "Clock difference allowed when an OAUTHBEARER token's exp, nbf and iat are checked.", func(c *Config) *int { return &c.OAuthClockSkewSecs }),
	boolSpec("allow.everyone.if.no.acl.found", "false", "With the authorizer on: allow a request on a resource no ACL applies to at all. Off by default, as in Kafka.", func(c *Config) *bool { return &c.AllowEveryoneIfNoACLFound }),
}, sslSpecs()...)

// ListenerKey is the per-listener form of key for listener: Kafka's
// listener.name.<name in lower case>.<key>.
func ListenerKey(listener, key string) string {
	return listenerPrefix + strings.ToLower(listener) + "." + key
}

// listenerSuffixes are the per-listener keys taken; any other is a
// warning.
func listenerKeyTaken(suffix string) bool {
	if suffix == "sasl.enabled.mechanisms" || suffix == oauthHandlerSuffix || sslListenerKey(suffix) {
		return true
	}
	mech, rest, ok := strings.Cut(suffix, ".")
	return ok && rest == "sasl.jaas.config" && mech != ""
}

// setListenerKey records a listener.name.* key. It reports false when the
// key is not a per-listener key ringbroker takes.
func (c *Config) setListenerKey(key, value string) (bool, error) {
	rest, ok := strings.CutPrefix(key, listenerPrefix)
	if !ok {
		return false, nil
	}
	name, suffix, ok := strings.Cut(rest, ".")
	if !ok || name == "" || !listenerKeyTaken(suffix) {
		return false, nil
	}
	if sslListenerKey(suffix) {
		if err := checkSSLValue(suffix, value); err != nil {
			return true, fmt.Errorf("%s: %w", key, err)
		}
	}
	if strings.HasSuffix(suffix, ".sasl.jaas.config") {
		if _, err := ParseJAAS(value); err != nil {
			return true, fmt.Errorf("%s: %w", key, err)
		}
	}
	if c.listenerKeys == nil {
		c.listenerKeys = map[string]string{}
	}
	c.listenerKeys[listenerPrefix+strings.ToLower(name)+"."+suffix] = value
	return true, nil
}

// ListenerProtocol is the security protocol of the listener named name.
func (c *Config) ListenerProtocol(name string) string {
	return c.ListenerSecurityProtocolMap[name]
}

// SaslMechanisms are the enabled SASL mechanisms of a listener:
// listener.name.<l>.sasl.enabled.mechanisms, else sasl.enabled.mechanisms.
func (c *Config) SaslMechanisms(listener string) []string {
	if v, ok := c.listenerKeys[ListenerKey(listener, "sasl.enabled.mechanisms")]; ok {
		return splitList(v)
	}
	return slices.Clone(c.SaslEnabledMechanisms)
}

// PlainUsers are the SASL/PLAIN users of a listener, from
// listener.name.<l>.plain.sasl.jaas.config (user_<name>="<password>").
func (c *Config) PlainUsers(listener string) (map[string]string, error) {
	key := ListenerKey(listener, "plain.sasl.jaas.config")
	v, ok := c.listenerKeys[key]
	if !ok {
		return nil, fmt.Errorf("listener %s enables PLAIN but %s is not set", listener, key)
	}
	m, err := ParseJAAS(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if m.LoginModule != PlainLoginModule {
		return nil, fmt.Errorf("%s: login module %s, want %s", key, m.LoginModule, PlainLoginModule)
	}
	users := m.PlainUsers()
	if len(users) == 0 {
		return nil, fmt.Errorf("%s: no user_<name>=\"<password>\" option: nobody could authenticate", key)
	}
	return users, nil
}

// OAuthUnsecured reports whether listener's OAUTHBEARER takes unsecured
// tokens (its listener.name.<l>.oauthbearer.sasl.server.callback.handler.class
// names Kafka's unsecured validator); otherwise tokens are verified with
// the keys of sasl.oauthbearer.jwks.endpoint.url, which must then be set.
// Unlike Kafka, whose default is the unsecured validator, ringbroker
// verifies unless told otherwise.
func (c *Config) OAuthUnsecured(listener string) (bool, error) {
	key := ListenerKey(listener, oauthHandlerSuffix)
	switch v := strings.TrimSpace(c.listenerKeys[key]); v {
	case OAuthUnsecuredValidator:
		return true, nil
	case "", OAuthSecuredValidator:
		if c.OAuthJWKSURL == "" {
			return false, fmt.Errorf("listener %s enables OAUTHBEARER but sasl.oauthbearer.jwks.endpoint.url is not set (or set %s=%s for unsigned development tokens)", listener, key, OAuthUnsecuredValidator)
		}
		return false, nil
	default:
		return false, fmt.Errorf("%s: unknown validator %s (served: %s, %s)", key, v, OAuthSecuredValidator, OAuthUnsecuredValidator)
	}
}

// JWKSPath is the file a sasl.oauthbearer.jwks.endpoint.url names: a
// file: URL (file:/p, file:///p) or a plain path.
func JWKSPath(u string) (string, error) {
	switch {
	case strings.HasPrefix(u, "file://"):
		p := strings.TrimPrefix(u, "file://")
		if !strings.HasPrefix(p, "/") {
			return "", fmt.Errorf("%s: a file URL with a host is not served; write file:///path", u)
		}
		return p, nil
	case strings.HasPrefix(u, "file:"):
		return strings.TrimPrefix(u, "file:"), nil
	case strings.Contains(u, "://"):
		return "", fmt.Errorf("%s: only file: URLs and paths are served (ringbroker makes no outbound requests)", u)
	}
	return u, nil
}

// AuthorizerEnabled reports whether authorizer.class.name turns ACLs on.
func (c *Config) AuthorizerEnabled() bool { return c.AuthorizerClassName != "" }

// ScramEnabled reports whether some served listener enables a SCRAM
// mechanism.
func (c *Config) ScramEnabled() bool {
	for _, l := range c.Listeners {
		if !IsSASLProtocol(c.ListenerProtocol(l.Name)) {
			continue
		}
		for _, m := range c.SaslMechanisms(l.Name) {
			if strings.HasPrefix(m, "SCRAM-") {
				return true
			}
		}
	}
	return false
}

// validateSecurity checks the listeners' protocols and SASL settings.
func (c *Config) validateSecurity() error {
	if err := c.validateControllerSecurity(); err != nil {
		return err
	}
	for _, l := range c.Listeners {
		switch proto := c.ListenerProtocol(l.Name); proto {
		case ProtocolPlaintext:
		case ProtocolSASLPlaintext, ProtocolSASLSSL, ProtocolSSL:
			if isTLSProtocol(proto) {
				if _, err := c.SSL(l.Name); err != nil {
					return err
				}
			}
			if proto == ProtocolSSL {
				continue
			}
			mechs := c.SaslMechanisms(l.Name)
			if len(mechs) == 0 {
				return fmt.Errorf("listener %s (%s): no SASL mechanism enabled (%s)", l.Name, proto, ListenerKey(l.Name, "sasl.enabled.mechanisms"))
			}
			for _, m := range mechs {
				if !slices.Contains(saslMechanismsServed, m) {
					return fmt.Errorf("listener %s (%s): SASL mechanism %s is not served (served: %s); set %s or sasl.enabled.mechanisms",
						l.Name, proto, m, strings.Join(saslMechanismsServed, ", "), ListenerKey(l.Name, "sasl.enabled.mechanisms"))
				}
				if m == "PLAIN" {
					if _, err := c.PlainUsers(l.Name); err != nil {
						return err
					}
				}
				if m == "OAUTHBEARER" {
					if _, err := c.OAuthUnsecured(l.Name); err != nil {
						return err
					}
				}
			}
		default:
			return fmt.Errorf("listeners: listener %s has no entry in listener.security.protocol.map", l.Name)
		}
	}
	for k := range c.listenerKeys {
		name, _, _ := strings.Cut(strings.TrimPrefix(k, listenerPrefix), ".")
		known := false
		for _, l := range c.listenersRaw {
			known = known || strings.EqualFold(l.Name, name)
		}
		if !known {
			return fmt.Errorf("%s: no listener named %s in listeners", k, strings.ToUpper(name))
		}
	}
	return c.validateInterBroker()
}

// InterBrokerListener is the advertised listener other brokers connect to
// (replica fetchers, transaction markers): inter.broker.listener.name, else
// the listener named security.inter.broker.protocol (Kafka's rule), else
// the first advertised listener (Kafka would take the one named
// PLAINTEXT). ok is false when no such listener is advertised.
func (c *Config) InterBrokerListener() (l Listener, ok bool) {
	name := c.InterBrokerListenerName
	if name == "" {
		name = c.SecurityInterBrokerProtocol
	}
	if name == "" {
		if len(c.AdvertisedListeners) == 0 {
			return Listener{}, false
		}
		return c.AdvertisedListeners[0], true
	}
	for _, a := range c.AdvertisedListeners {
		if a.Name == name {
			return a, true
		}
	}
	return Listener{}, false
}

// InterBrokerSASL is how this node's own clients authenticate on a SASL
// inter-broker listener: sasl.mechanism.inter.broker.protocol (PLAIN,
// SCRAM-SHA-256 or SCRAM-SHA-512, enabled on the listener) and the
// username and password options of the listener's JAAS config for it.
func (c *Config) InterBrokerSASL() (mechanism, user, password string, err error) {
	l, ok := c.InterBrokerListener()
	if !ok {
		return "", "", "", errors.New("no inter-broker listener")
	}
	mech := c.SaslMechanismInterBroker
	switch mech {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return "", "", "", fmt.Errorf("sasl.mechanism.inter.broker.protocol=%s: ringbroker's inter-broker clients authenticate with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", mech)
	}
	if !slices.Contains(c.SaslMechanisms(l.Name), mech) {
		return "", "", "", fmt.Errorf("sasl.mechanism.inter.broker.protocol=%s is not enabled on the inter-broker listener %s", mech, l.Name)
	}
	key := ListenerKey(l.Name, strings.ToLower(mech)+".sasl.jaas.config")
	v, ok := c.listenerKeys[key]
	if !ok {
		return "", "", "", fmt.Errorf("%s is not set: the inter-broker clients take their username and password from it", key)
	}
	m, err := ParseJAAS(v)
	if err != nil {
		return "", "", "", fmt.Errorf("%s: %w", key, err)
	}
	user, password = m.Options["username"], m.Options["password"]
	if user == "" || password == "" {
		return "", "", "", fmt.Errorf("%s: no username and password options for the inter-broker clients", key)
	}
	return mech, user, password, nil
}

// validateInterBroker checks the inter-broker listener as Kafka's
// KafkaConfig does, and an SSL one's client-side settings. A SASL one is
// accepted (a one-node cluster has no follower) and the daemon warns at
// start: ringbroker's own clients do not authenticate with SASL.
func (c *Config) validateInterBroker() error {
	if c.InterBrokerListenerName != "" && c.SecurityInterBrokerProtocol != "" {
		return errors.New("only one of inter.broker.listener.name and security.inter.broker.protocol should be set")
	}
	if name := c.InterBrokerListenerName; name != "" && slices.Contains(c.ControllerListenerNames, name) {
		return fmt.Errorf("controller.listener.names must not contain a value appearing in the 'inter.broker.listener.name' configuration (%s)", name)
	}
	l, ok := c.InterBrokerListener()
	if !ok {
		key, name := "inter.broker.listener.name", c.InterBrokerListenerName
		if name == "" {
			key, name = "security.inter.broker.protocol", c.SecurityInterBrokerProtocol
		}
		return fmt.Errorf("%s: %s must be a listener name defined in advertised.listeners", key, name)
	}
	if !c.Clustered() {
		return nil // a single broker opens no inter-broker connection
	}
	if c.ListenerProtocol(l.Name) == ProtocolSSL {
		if _, err := c.SSL(l.Name); err != nil {
			return err
		}
	}
	return nil
}

// validateControllerSecurity checks the protocols of the
// controller.listener.names: the metadata quorum's transport serves
// PLAINTEXT and SSL (TLS with the listener's ssl.* keys, both ways); it
// has its own handshake frames and no Kafka SASL exchange, so SASL
// protocols are refused rather than served without authentication.
func (c *Config) validateControllerSecurity() error {
	if !c.Clustered() {
		return nil
	}
	for _, name := range c.ControllerListenerNames {
		switch proto := c.ListenerProtocol(name); proto {
		case "", ProtocolPlaintext:
		case ProtocolSSL:
			if _, err := c.SSL(name); err != nil {
				return err
			}
		default:
			return fmt.Errorf("controller listener %s is mapped to %s: the metadata quorum's connections serve PLAINTEXT and SSL only (no SASL exchange on them); map it to SSL, with ssl.client.auth=required for mutual authentication", name, proto)
		}
	}
	return nil
}

// printListenerKeys writes the per-listener keys for Print, JAAS values
// hidden (they hold passwords).
func (c *Config) printListenerKeys() []string {
	var out []string
	for _, k := range sortedKeys(c.listenerKeys) {
		v := c.listenerKeys[k]
		_, suffix, _ := strings.Cut(strings.TrimPrefix(k, listenerPrefix), ".")
		if strings.HasSuffix(k, ".sasl.jaas.config") || sslSensitive[suffix] {
			out = append(out, "# "+k+"=[hidden]")
			continue
		}
		out = append(out, k+"="+v)
	}
	return out
}
