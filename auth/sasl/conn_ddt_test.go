package sasl

// Datadriven scripts for the per-connection sequencing (testdata/*.txt;
// -rewrite regenerates the expected outputs). Mechanisms are PLAIN
// (alice/alice-secret, carol/carol-secret) and SCRAM-SHA-256 (user/pencil,
// RFC 7677, with the RFC's server nonce).
//
//	conn [mechanisms=A,B] [reauth=DUR]     fresh connection, t=0
//	admit API                              API: ApiVersions, SaslHandshake, SaslAuthenticate, Metadata, Produce, ...
//	versions [accepted=false]              ApiVersionsAnswered
//	handshake v=N mech=M
//	authenticate v=N token="Go-quoted string"
//	raw token="..."                        a raw token after a v0 handshake
//	advance DUR
//	state

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
)

var apiKeysByName = map[string]int16{"ApiVersions": APIKeyApiVersions, "SaslHandshake": APIKeySaslHandshake,
	"SaslAuthenticate": APIKeySaslAuthenticate, "Metadata": 3, "Produce": 0, "Fetch": 1}

type connHarness struct {
	c   *Conn
	now time.Time
}

func TestConnDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		if !strings.HasSuffix(path, ".txt") {
			return
		}
		h := &connHarness{}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out, err := h.handle(t, d)
			if err != nil {
				d.Fatalf(t, "%v", err)
			}
			return out
		})
	})
}

func testServers(t testing.TB) func(string) Server {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	cred, err := ScramSHA256.DeriveCredential("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return func(mech string) Server {
		switch mech {
		case MechanismPlain:
			return NewPlainServer(func(u string) ([]byte, bool, error) {
				switch u {
				case "alice", "carol":
					return []byte(u + "-secret"), true, nil
				}
				return nil, false, nil
			})
		case MechanismScramSHA256:
			s := NewScramServer(ScramSHA256, lookupOne("user", cred), rand.Reader)
			s.serverNonce = func() (string, error) { return rfcServerNonce, nil }
			return s
		}
		return nil
	}
}

func (h *connHarness) handle(t *testing.T, d *datadriven.TestData) (string, error) {
	kv := map[string]string{}
	var pos []string
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 {
			pos = append(pos, a.Key)
		} else {
			kv[a.Key] = strings.Join(a.Vals, ",")
		}
	}
	intArg := func(k string) int16 {
		n, _ := strconv.Atoi(kv[k])
		return int16(n)
	}
	token := func() ([]byte, error) {
		s, err := strconv.Unquote(`"` + kv["token"] + `"`)
		return []byte(s), err
	}
	var out strings.Builder
	switch d.Cmd {
	case "conn":
		cfg := ConnConfig{Mechanisms: []string{MechanismPlain, MechanismScramSHA256}, NewServer: testServers(t)}
		if m, ok := kv["mechanisms"]; ok {
			cfg.Mechanisms = strings.Split(m, ",")
		}
		if r, ok := kv["reauth"]; ok {
			dur, err := time.ParseDuration(r)
			if err != nil {
				return "", err
			}
			cfg.MaxReauth = dur
		}
		h.c, h.now = NewConn(cfg), time.Unix(1000, 0)
	case "admit":
		key, ok := apiKeysByName[pos[0]]
		if !ok {
			return "", fmt.Errorf("unknown API %q", pos[0])
		}
		if err := h.c.Admit(h.now, key); err != nil {
			se := err.(*StateError)
			if se.Respond {
				fmt.Fprintf(&out, "ILLEGAL_SASL_STATE then close: %s\n", se.Message)
			} else {
				fmt.Fprintf(&out, "close: %s\n", se.Message)
			}
		} else {
			out.WriteString("admitted\n")
		}
	case "versions":
		h.c.ApiVersionsAnswered(kv["accepted"] != "false")
	case "handshake":
		r := h.c.Handshake(h.now, intArg("v"), kv["mech"])
		fmt.Fprintf(&out, "%s mechanisms=%v close=%v\n", errName(r.ErrorCode), r.Mechanisms, r.Close)
	case "authenticate":
		tok, err := token()
		if err != nil {
			return "", err
		}
		r := h.c.Authenticate(h.now, intArg("v"), tok)
		if !r.Respond {
			fmt.Fprintf(&out, "no response, close=%v (%v)\n", r.Close, r.Failure)
			break
		}
		fmt.Fprintf(&out, "%s", errName(r.ErrorCode))
		if r.ErrorMessage != nil {
			fmt.Fprintf(&out, " %q", *r.ErrorMessage)
		}
		fmt.Fprintf(&out, " bytes=%q lifetime=%dms close=%v\n", r.AuthBytes, r.SessionLifetimeMs, r.Close)
		if r.Failure != nil {
			fmt.Fprintf(&out, "log: %v\n", r.Failure)
		}
	case "raw":
		tok, err := token()
		if err != nil {
			return "", err
		}
		b, send, err := h.c.RawToken(h.now, tok)
		if err != nil {
			fmt.Fprintf(&out, "close (%v)\n", err)
		} else {
			fmt.Fprintf(&out, "send=%v %q\n", send, b)
		}
	case "advance":
		dur, err := time.ParseDuration(pos[0])
		if err != nil {
			return "", err
		}
		h.now = h.now.Add(dur)
	case "state":
		fmt.Fprintf(&out, "authenticated=%v user=%q mechanism=%q raw=%v expired=%v\n", h.c.Authenticated(), h.c.Username(),
			h.c.Mechanism(), h.c.RawTokenExpected(), h.c.SessionExpired(h.now))
	default:
		return "", fmt.Errorf("unknown command %q", d.Cmd)
	}
	return out.String(), nil
}

func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).(*kerr.Error).Message
}
