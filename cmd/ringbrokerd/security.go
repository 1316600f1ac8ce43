package main

import (
	"time"

	"github.com/ringbroker/ringbroker/auth/acl"
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
		if ls.Protocol == config.ProtocolSASLPlaintext {
			ls.Mechanisms = cfg.SaslMechanisms(l.Name)
			for _, m := range ls.Mechanisms {
				if m != "PLAIN" {
					continue
				}
				users, err := cfg.PlainUsers(l.Name)
				if err != nil {
					return nil, err
				}
				ls.PlainUsers = users
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
