// Package sasl is the server side of Kafka's SASL authentication, free of
// I/O, clocks and global randomness: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
// and OAUTHBEARER as state machines (bytes in, bytes out, done or error),
// SCRAM credentials, JWT validation against a JWKS document, and the
// per-connection sequencing of ApiVersions, SaslHandshake and
// SaslAuthenticate.
//
// Model. A Server is one exchange: Step takes the client's next message
// and returns the answer, done, or an *Error. Error.Public says whether
// Kafka would show its message to the client (a
// SaslAuthenticationException) or only "Authentication failed during
// authentication due to invalid credentials with SASL mechanism M"
// (ClientMessage); no message carries a password, proof or raw client
// message. Credentials come from injected lookups (PlainLookup,
// ScramLookup), randomness from an injected io.Reader.
//
// Conn follows Kafka's SaslServerAuthenticator for one connection:
//
//	before authentication: ApiVersions (first, once), SaslHandshake,
//	then SaslAuthenticate (handshake v1+) or raw size-prefixed tokens
//	(handshake v0, KIP-152); anything else closes the connection.
//
// plus KIP-368: with connections.max.reauth.ms (or an expiring
// credential) the session has a lifetime, sent in the last
// SaslAuthenticateResponse; after it a connection must re-authenticate
// (same mechanism, same principal) or is closed.
//
// What the broker must do to use it, per connection on a SASL listener:
//   - create a Conn with the listener's sasl.enabled.mechanisms and a
//     NewServer that builds PlainServer (users from
//     listener.name.<l>.plain.sasl.jaas.config), ScramServer
//     (credentials from the durable store; crypto/rand.Reader) or
//     OAuthBearerServer (a JWTValidator over the JWKS document read from
//     sasl.oauthbearer.jwks.endpoint.url, with the expected issuer and
//     audience, clock skew and the wall clock; JWTConfig.Unsecured only
//     when the operator asks for Kafka's unsecured development mode);
//   - cap frames at DefaultMaxReceiveSize until Authenticated;
//   - if RawTokenExpected, pass the next frame to RawToken and write its
//     answer size-prefixed; otherwise parse the request header and call
//     Admit(now, key) before dispatching: an error closes the connection
//     (after an ILLEGAL_SASL_STATE response if StateError.Respond);
//   - ApiVersions goes to its ordinary handler, then ApiVersionsAnswered;
//     SaslHandshake to Handshake, SaslAuthenticate to Authenticate; write
//     the results with kmsg and close when Close is set, delaying that
//     close by connection.failed.authentication.delay.ms after a failed
//     authentication, and logging AuthenticateResult.Failure;
//   - once Authenticated, the principal is User:<Username()>;
//   - AlterUserScramCredentials derives credentials with
//     ScramMechanism.DeriveCredential (salt from the request) within
//     [MinIterations, MaxIterations].
//
// Not supported: GSSAPI (a first frame that is not a Kafka request is
// refused, where Kafka would fall back to GSSAPI), delegation tokens
// (SCRAM's tokenauth=true fails), SCRAM channel binding (only gs2 header
// "n"); JWT algorithms other than RS256 and ES256; fetching and
// refreshing a JWKS over HTTPS (the broker's job: ParseJWKS takes the
// document).
package sasl
