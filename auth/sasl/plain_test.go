package sasl

import (
	"errors"
	"testing"
)

func plainLookup(u string) ([]byte, bool, error) {
	switch u {
	case "alice":
		return []byte("alice-secret"), true, nil
	case "broken":
		return nil, false, errors.New("store down")
	}
	return nil, false, nil
}

func TestPlain(t *testing.T) {
	for _, tc := range []struct {
		in      string
		errMsg  string // "" for success
		wantUsr string
	}{
		{"\x00alice\x00alice-secret", "", "alice"},
		{"alice\x00alice\x00alice-secret", "", "alice"},
		{"bob\x00alice\x00alice-secret", "Authentication failed: Client requested an authorization id that is different from username", ""},
		{"\x00alice\x00wrong", "Authentication failed: Invalid username or password", ""},
		{"\x00alice\x00alice-secre", "Authentication failed: Invalid username or password", ""},
		{"\x00nobody\x00alice-secret", "Authentication failed: Invalid username or password", ""},
		{"\x00broken\x00x", "Authentication failed: credentials for user could not be verified", ""},
		{"\x00\x00pw", "Authentication failed: username not specified", ""},
		{"\x00alice\x00", "Authentication failed: password not specified", ""},
		{"", "Invalid SASL/PLAIN response: expected 3 tokens, got 1", ""},
		{"alice\x00pw", "Invalid SASL/PLAIN response: expected 3 tokens, got 2", ""},
		{"a\x00b\x00c\x00d", "Invalid SASL/PLAIN response: expected 3 tokens, got 4", ""},
		{"a\x00b\x00c\x00d\x00e\x00f", "Invalid SASL/PLAIN response: expected 3 tokens, got 4", ""},
	} {
		s := NewPlainServer(plainLookup)
		out, done, err := s.Step([]byte(tc.in))
		if tc.errMsg == "" {
			if err != nil || !done || len(out) != 0 || out == nil || s.Username() != tc.wantUsr {
				t.Errorf("%q: %q %v %v %q", tc.in, out, done, err, s.Username())
			}
		} else {
			e, ok := err.(*Error)
			if !ok || !e.Public || e.Message != tc.errMsg || done {
				t.Errorf("%q: want %q, got %v", tc.in, tc.errMsg, err)
			}
		}
		if _, _, err := s.Step([]byte(tc.in)); err == nil || !err.(*Error).IllegalState {
			t.Errorf("%q: a second message was not refused: %v", tc.in, err)
		}
	}
}

func TestPlainInvalidUTF8(t *testing.T) {
	// Java decodes invalid UTF-8 to U+FFFD; so do we, so a password with
	// an invalid byte equals one with U+FFFD in its place.
	authzid, user, pw, err := ParsePlain([]byte("\x00al\xffice\x00p\xfe"))
	if err != nil || len(authzid) != 0 || string(user) != "al\uFFFDice" || string(pw) != "p\uFFFD" {
		t.Fatalf("%q %q %q %v", authzid, user, pw, err)
	}
}
