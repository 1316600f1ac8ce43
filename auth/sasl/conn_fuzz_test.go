package sasl

import (
	"testing"
	"time"
)

// FuzzConnSequence drives a Conn through any sequence of requests a
// client could send (Admit of any API key, ApiVersions answered or not,
// SaslHandshake of any version and mechanism, SaslAuthenticate v0-v2 and
// raw v0 tokens with any bytes, time passing): it never panics, and it is
// authenticated only with a user name, reached through a completed
// exchange.
//
// Input: a sequence of ops; each is an op byte, then its argument bytes
// (a length byte and that many bytes for tokens).
func FuzzConnSequence(f *testing.F) {
	plainOK := "\x00alice\x00alice-secret"
	f.Add([]byte("\x02\x01\x00\x03\x01" + string(rune(len(plainOK))) + plainOK))
	f.Add([]byte("\x01\x01\x02\x01\x01\x03\x02\x05\x00bob\x00x\x00\x00"))
	f.Add([]byte("\x02\x00\x00\x04\x05\x00a\x00b\x05\x05\x02\x01\x00"))
	f.Add([]byte{0, 3, 0, 0})
	mechanisms := []string{MechanismPlain, MechanismScramSHA256, "GSSAPI", ""}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := NewConn(ConnConfig{Mechanisms: []string{MechanismPlain, MechanismScramSHA256}, NewServer: testServers(t), MaxReauth: time.Minute})
		now := time.Unix(1000, 0)
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		token := func() []byte {
			n := int(next())
			n = min(n, len(data))
			tok := data[:n]
			data = data[n:]
			return tok
		}
		for steps := 0; len(data) > 0 && steps < 64; steps++ {
			switch next() % 6 {
			case 0:
				_ = c.Admit(now, int16(next()))
			case 1:
				c.ApiVersionsAnswered(next()%2 == 0)
			case 2:
				version := int16(next() % 2)
				_ = c.Handshake(now, version, mechanisms[int(next())%len(mechanisms)])
			case 3:
				version := int16(next() % 3)
				_ = c.Authenticate(now, version, token())
			case 4:
				_, _, _ = c.RawToken(now, token())
			case 5:
				now = now.Add(time.Duration(next()) * time.Second)
				_ = c.SessionExpired(now)
			}
			if c.Authenticated() && c.Username() == "" {
				t.Fatalf("authenticated without a user name (mechanism %q)", c.Mechanism())
			}
		}
	})
}
