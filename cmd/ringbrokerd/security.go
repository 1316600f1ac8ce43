package main

import (
	"fmt"
	"os"
	"time"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/auth/sasl"
	"github.com/ringbroker/ringbroker/auth/sslprincipal"
	"github.com/ringbroker/ringbroker/broker"
	"github.com/ringbroker/ringbroker/config"
)

// securityOptions builds the broker's SASL listeners and authorizer from
// the configuration (validated by config: protocols, mechanisms, JAAS).
func securityOptions(cfg *config.Config) (*broker.SecurityOptions, error) {
	opts := &broker.SecurityOptions{
		FailedAuthenticationDelay: time.Duration(cfg.ConnectionFailedAuthenticationDelayMs) * time.Millisecond,
		MaxReauth:                 time.Duration(cfg.ConnectionsMaxReauthMs) * time.Millisecond,
		MaxReceiveSize:            cfg.SaslServerMaxReceiveSize,
		MaxAuthenticating:         cfg.ConnMaxAuthenticating,
	}
	for _, l := range cfg.Listeners {
		ls := broker.ListenerSecurity{Name: l.Name, Protocol: cfg.ListenerProtocol(l.Name)}
		for _, a := range cfg.AdvertisedListeners {
			if a.Name == l.Name {
				ls.AdvertisedHost, ls.AdvertisedPort = a.Host, int32(a.Port)
			}
		}
		if ls.Protocol == config.ProtocolSSL {
			s, err := cfg.SSL(l.Name)
			if err != nil {
				return nil, err
			}
			if ls.PrincipalMapper, err = sslprincipal.Parse(s.PrincipalMappingRules); err != nil {
				return nil, fmt.Errorf("listener %s: %w", l.Name, err)
			}
		}
		if config.IsSASLProtocol(ls.Protocol) {
			ls.Mechanisms = cfg.SaslMechanisms(l.Name)
			for _, m := range ls.Mechanisms {
				switch m {
				case "PLAIN":
					users, err := cfg.PlainUsers(l.Name)
					if err != nil {
						return nil, err
					}
					ls.PlainUsers = users
				case sasl.MechanismOAuthBearer:
					v, err := oauthValidator(cfg, l.Name)
					if err != nil {
						return nil, err
					}
					ls.OAuth = v
				}
			}
		}
		opts.Listeners = append(opts.Listeners, ls)
	}
	if cfg.AuthorizerEnabled() {
		supers, err := acl.ParseSuperUsers(cfg.SuperUsers)
		if err != nil {
			return nil, err
		}
		opts.Authorizer = &acl.Config{SuperUsers: supers, AllowEveryoneIfNoACLFound: cfg.AllowEveryoneIfNoACLFound}
	}
	return opts, nil
}

// oauthValidator is listener's OAUTHBEARER token validator: JWTs verified
// with the JWKS file of sasl.oauthbearer.jwks.endpoint.url (read once, at
// start), or, when the listener names Kafka's unsecured validator,
// unsigned development tokens.
func oauthValidator(cfg *config.Config, listener string) (sasl.TokenValidator, error) {
	unsecured, err := cfg.OAuthUnsecured(listener)
	if err != nil {
		return nil, err
	}
	jc := sasl.JWTConfig{Issuer: cfg.OAuthIssuer, Audiences: cfg.OAuthAudiences, SubClaim: cfg.OAuthSubClaim,
		ScopeClaim: cfg.OAuthScopeClaim, ClockSkew: time.Duration(cfg.OAuthClockSkewSecs) * time.Second,
		Now: time.Now, Unsecured: unsecured}
	if unsecured {
		// Kafka's unsecured validator checks neither issuer nor
		// audience: those keys configure the verifying one.
		jc.Issuer, jc.Audiences = "", nil
	} else {
		path, err := config.JWKSPath(cfg.OAuthJWKSURL)
		if err != nil {
			return nil, err
		}
		doc, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("sasl.oauthbearer.jwks.endpoint.url: %w", err)
		}
		if jc.Keys, err = sasl.ParseJWKS(doc); err != nil {
			return nil, fmt.Errorf("sasl.oauthbearer.jwks.endpoint.url %s: %w", path, err)
		}
	}
	return sasl.NewJWTValidator(jc)
}
