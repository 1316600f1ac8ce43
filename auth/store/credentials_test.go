package store

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/ringbroker/ringbroker/auth/sasl"
)

func testCred(t testing.TB, m *sasl.ScramMechanism, pw string) sasl.Credential {
	c, err := m.DeriveCredential(pw, []byte("salt-"+pw), 4096)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCredentialsRoundTrip(t *testing.T) {
	set := map[Key]sasl.Credential{
		{User: "bob", Mechanism: MechanismSHA512}:   testCred(t, sasl.ScramSHA512, "b"),
		{User: "alice", Mechanism: MechanismSHA256}: testCred(t, sasl.ScramSHA256, "a"),
		{User: "alice", Mechanism: MechanismSHA512}: testCred(t, sasl.ScramSHA512, "a"),
	}
	data, err := EncodeCredentials(set)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeCredentials(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := EncodeCredentials(back)
	if !bytes.Equal(data, again) || len(back) != 3 {
		t.Fatal("re-encoding differs")
	}
	empty, _ := EncodeCredentials(nil)
	if m, err := DecodeCredentials(empty); err != nil || len(m) != 0 {
		t.Fatalf("empty: %v %v", m, err)
	}
	data[10] ^= 1
	if _, err := DecodeCredentials(data); err == nil {
		t.Fatal("corrupt set decoded")
	}
}

func TestCredentialsUpdate(t *testing.T) {
	c := NewCredentials()
	k := Key{User: "alice", Mechanism: MechanismSHA256}
	fail := errors.New("disk full")
	if err := c.Update(nil, map[Key]sasl.Credential{k: testCred(t, sasl.ScramSHA256, "a")}, func([]byte) error { return fail }); err != fail {
		t.Fatalf("err %v", err)
	}
	if _, ok := c.Lookup(sasl.ScramSHA256, "alice"); ok {
		t.Fatal("a failed persist published the change")
	}
	var saved []byte
	if err := c.Update(nil, map[Key]sasl.Credential{k: testCred(t, sasl.ScramSHA256, "a")}, func(b []byte) error { saved = b; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Lookup(sasl.ScramSHA256, "alice"); !ok {
		t.Fatal("not published")
	}
	d := NewCredentials()
	if err := d.Load(saved); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Lookup(sasl.ScramSHA256, "alice"); !ok || len(d.Users()) != 1 {
		t.Fatal("not loaded")
	}
	if err := c.Update([]Key{k}, nil, func([]byte) error { return nil }); err != nil || len(c.Users()) != 0 {
		t.Fatalf("delete: %v, %v", err, c.Users())
	}
}

// FuzzDecodeCredentials: never panics; what decodes re-encodes to the
// same bytes.
func FuzzDecodeCredentials(f *testing.F) {
	c, _ := sasl.ScramSHA512.NewCredential("pw", 4096, rand.Reader)
	d, _ := sasl.ScramSHA256.NewCredential("pw", 8192, rand.Reader)
	seed, _ := EncodeCredentials(map[Key]sasl.Credential{{User: "u", Mechanism: MechanismSHA512}: c, {User: "v", Mechanism: MechanismSHA256}: d})
	f.Add(seed)
	empty, _ := EncodeCredentials(nil)
	f.Add(empty)
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := DecodeCredentials(data)
		if err != nil {
			return
		}
		again, err := EncodeCredentials(set)
		if err != nil {
			t.Fatalf("decoded set does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatal("re-encoding differs from the input")
		}
	})
}
