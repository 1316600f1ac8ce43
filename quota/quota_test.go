package quota

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func str(s string) *string { return &s }

func mustAlter(t *testing.T, s Set, alts ...Alteration) Set {
	t.Helper()
	_, errs, changes := s.Alter(alts)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("alteration %d: %v", i, err)
		}
	}
	return s.Apply(changes...)
}

func TestPrecedence(t *testing.T) {
	var s Set
	set := func(types []string, names []*string, v float64) {
		s = mustAlter(t, s, Alteration{Types: types, Names: names, Ops: []Op{{Key: KeyProducerByteRate, Value: v}}})
	}
	uc := []string{TypeUser, TypeClientID}
	set([]string{TypeClientID}, []*string{nil}, 8)
	set([]string{TypeClientID}, []*string{str("c")}, 7)
	set([]string{TypeUser}, []*string{nil}, 6)
	set(uc, []*string{nil, nil}, 5)
	set(uc, []*string{nil, str("c")}, 4)
	set([]string{TypeUser}, []*string{str("u")}, 3)
	set(uc, []*string{str("u"), nil}, 2)
	set(uc, []*string{str("u"), str("c")}, 1)
	want := []struct {
		v  float64
		sk SensorKey
	}{{1, SensorKey{User: "u", ClientID: "c"}}, {2, SensorKey{User: "u", ClientID: "c"}}, {3, SensorKey{User: "u", ClientID: ""}}, {4, SensorKey{User: "u", ClientID: "c"}},
		{5, SensorKey{User: "u", ClientID: "c"}}, {6, SensorKey{User: "u", ClientID: ""}}, {7, SensorKey{User: "", ClientID: "c"}}, {8, SensorKey{User: "", ClientID: "c"}}}
	for i, w := range want {
		v, sk, ok := s.Lookup(KeyProducerByteRate, "u", "c")
		if !ok || v != w.v || sk != w.sk {
			t.Fatalf("step %d: got %v %+v %v, want %v %+v", i, v, sk, ok, w.v, w.sk)
		}
		// Remove the most specific entity and look again.
		e := s.Entities()
		var most Entity
		for _, x := range e {
			if x2, ok := s.m[x][KeyProducerByteRate]; ok && x2 == w.v {
				most = x
			}
		}
		s = s.Apply(Change{Entity: most, Key: KeyProducerByteRate, Remove: true})
	}
	if _, _, ok := s.Lookup(KeyProducerByteRate, "u", "c"); ok || s.Len() != 0 {
		t.Fatalf("quota left after removing every entity: %v", s.Entities())
	}
}

func TestAlterValidation(t *testing.T) {
	var s Set
	cases := []struct {
		a    Alteration
		code int16
	}{
		{Alteration{}, kerr.InvalidRequest.Code},
		{Alteration{Types: []string{"group"}, Names: []*string{str("x")}}, kerr.InvalidRequest.Code},
		{Alteration{Types: []string{TypeUser, TypeUser}, Names: []*string{str("a"), str("b")}}, kerr.InvalidRequest.Code},
		{Alteration{Types: []string{TypeUser}, Names: []*string{str("")}}, kerr.InvalidRequest.Code},
		{Alteration{Types: []string{TypeUser, TypeIP}, Names: []*string{str("a"), str("1.2.3.4")}}, kerr.InvalidRequest.Code},
		{Alteration{Types: []string{TypeUser}, Names: []*string{str("a")}, Ops: []Op{{Key: "bogus", Value: 1}}}, kerr.InvalidRequest.Code},
		{Alteration{Types: []string{TypeUser}, Names: []*string{str("a")}, Ops: []Op{{Key: KeyProducerByteRate, Value: 1.5}}}, kerr.InvalidRequest.Code},
		{Alteration{Types: []string{TypeUser}, Names: []*string{str("a")}, Ops: []Op{{Key: KeyProducerByteRate, Value: 0}}}, kerr.InvalidRequest.Code},
		{Alteration{Types: []string{TypeUser}, Names: []*string{str("a")}, Ops: []Op{{Key: KeyProducerByteRate, Value: 1}, {Key: KeyProducerByteRate, Value: 2}}}, kerr.InvalidRequest.Code},
		{Alteration{Types: []string{TypeIP}, Names: []*string{str("1.2.3.4")}, Ops: []Op{{Key: KeyProducerByteRate, Value: 1}}}, kerr.InvalidRequest.Code},
		{Alteration{Types: []string{TypeIP}, Names: []*string{str("1.2.3.4")}, Ops: []Op{{Key: KeyConnectionCreationRate, Value: 10}}}, 0},
		{Alteration{Types: []string{TypeUser}, Names: []*string{str("a")}, Ops: []Op{{Key: KeyRequestPercentage, Value: 12.5}}}, 0},
	}
	for i, c := range cases {
		_, errs, changes := s.Alter([]Alteration{c.a})
		code := int16(0)
		if errs[0] != nil {
			code = errs[0].Code
		}
		if code != c.code || (code != 0) != (len(changes) == 0) {
			t.Errorf("case %d: code %d (%v), %d changes; want %d", i, code, errs[0], len(changes), c.code)
		}
	}
}

func TestDescribeAndEncode(t *testing.T) {
	var s Set
	s = mustAlter(t, s,
		Alteration{Types: []string{TypeUser}, Names: []*string{str("alice")}, Ops: []Op{{Key: KeyProducerByteRate, Value: 1024}}},
		Alteration{Types: []string{TypeUser, TypeClientID}, Names: []*string{str("alice"), nil}, Ops: []Op{{Key: KeyConsumerByteRate, Value: 2048}}},
		Alteration{Types: []string{TypeClientID}, Names: []*string{nil}, Ops: []Op{{Key: KeyRequestPercentage, Value: 50}}},
	)
	count := func(f []Filter, strict bool) int {
		t.Helper()
		e, err := s.Describe(f, strict)
		if err != nil {
			t.Fatal(err)
		}
		return len(e)
	}
	if n := count([]Filter{{Type: TypeUser, MatchType: MatchExact, Match: str("alice")}}, false); n != 2 {
		t.Fatalf("user=alice: %d entries, want 2", n)
	}
	if n := count([]Filter{{Type: TypeUser, MatchType: MatchExact, Match: str("alice")}}, true); n != 1 {
		t.Fatalf("user=alice strict: %d entries, want 1", n)
	}
	if n := count([]Filter{{Type: TypeClientID, MatchType: MatchDefault}}, false); n != 2 {
		t.Fatalf("client-id=<default>: %d entries, want 2", n)
	}
	if n := count(nil, false); n != 3 {
		t.Fatalf("all: %d, want 3", n)
	}
	if _, err := s.Describe([]Filter{{Type: TypeUser, MatchType: MatchExact}}, false); err == nil || err.Code != kerr.InvalidRequest.Code {
		t.Fatalf("exact without a match: %v", err)
	}
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Encode()
	if string(again) != string(data) || back.Len() != 3 {
		t.Fatalf("round trip changed the set")
	}
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x40
		if _, err := Decode(bad); err == nil {
			t.Fatalf("flipped byte %d decoded", i)
		}
	}
}

func TestRateThrottle(t *testing.T) {
	m := NewManager(Config{})
	m.SetConfigs(mustAlter(t, Set{}, Alteration{Types: []string{TypeUser}, Names: []*string{nil}, Ops: []Op{{Key: KeyProducerByteRate, Value: 1000}}}))
	// 10 s of exactly the quota: no throttle.
	now := int64(1_000_000)
	for i := 0; i < 100; i++ {
		if ms := m.Record(Produce, "u", "c", 100, now); ms != 0 && i > 0 {
			t.Fatalf("at the quota: throttled %d ms at step %d", ms, i)
		}
		now += 100
	}
	// A burst of 10 kB at once: window 10 s holds 20 kB, O=2000/s, T=1000:
	// X = (O-T)/T*W = W = 10 s, bounded to 11 s.
	ms := m.Record(Produce, "u", "c", 10000, now)
	if ms < 9000 || ms > 11000 {
		t.Fatalf("burst throttle %d ms, want about 10 s", ms)
	}
	if m.Record(Produce, "v", "c", 1, now) != 0 {
		t.Fatal("another user shares u's rate")
	}
	if m.Record(Fetch, "u", "c", 1e9, now) != 0 {
		t.Fatal("fetch throttled without a consumer quota")
	}
}

func TestAdmitConnection(t *testing.T) {
	m := NewManager(Config{Samples: 2})
	m.SetConfigs(mustAlter(t, Set{}, Alteration{Types: []string{TypeIP}, Names: []*string{str("10.0.0.1")}, Ops: []Op{{Key: KeyConnectionCreationRate, Value: 3}}}))
	now := int64(1_000_000)
	admitted := 0
	for i := 0; i < 10; i++ {
		if m.AdmitConnection("10.0.0.1", now) {
			admitted++
		}
	}
	// Over a 1 s minimum window, 4 recorded connections make 4/s > 3.
	if admitted != 4 {
		t.Fatalf("%d admitted at once, want 4", admitted)
	}
	if !m.AdmitConnection("10.0.0.2", now) {
		t.Fatal("an address without a quota refused")
	}
	if !m.AdmitConnection("10.0.0.1", now+3000) {
		t.Fatal("refused once the window passed")
	}
}

func TestMaxValueInWindow(t *testing.T) {
	m := NewManager(Config{}) // 11 samples of 1 s
	if m.MaxValueInWindow(Fetch, "u", "c") != 1<<63-1 {
		t.Fatal("capped without a quota")
	}
	m.SetConfigs(mustAlter(t, Set{}, Alteration{Types: []string{TypeClientID}, Names: []*string{str("c")}, Ops: []Op{{Key: KeyConsumerByteRate, Value: 1000}}}))
	if got := m.MaxValueInWindow(Fetch, "u", "c"); got != 10000 {
		t.Fatalf("cap %d, want quota x (11-1) x 1 s = 10000", got)
	}
}

// TestUnrecord: a throttled Fetch's bytes are taken back (Kafka's
// unrecordQuotaSensor), so a client refused its records does not owe more
// for them.
func TestUnrecord(t *testing.T) {
	m := NewManager(Config{Samples: 2})
	m.SetConfigs(mustAlter(t, Set{}, Alteration{Types: []string{TypeClientID}, Names: []*string{str("c")}, Ops: []Op{{Key: KeyConsumerByteRate, Value: 1000}}}))
	now := int64(1_000_000)
	if ms := m.Record(Fetch, "u", "c", 800, now); ms != 0 {
		t.Fatalf("800 B within a 1000 B/s quota throttled %d ms", ms)
	}
	ms := m.Record(Fetch, "u", "c", 800, now)
	if ms == 0 {
		t.Fatal("1600 B within 1 s not throttled")
	}
	m.Unrecord(Fetch, "u", "c", 800, now)
	if got := m.Check(Fetch, "u", "c", now); got != 0 {
		t.Fatalf("after taking the throttled bytes back the client still owes %d ms", got)
	}
	m.Unrecord(Fetch, "v", "d", 800, now) // nobody's rate: nothing happens
}
