package sslprincipal

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"
)

// The cases of Kafka's SslPrincipalMapperTest, plus ours.
func TestMapperRules(t *testing.T) {
	cases := []struct {
		rules, dn, want string
		noMatch         bool
	}{
		{rules: "DEFAULT", dn: "CN=Kafka Server 1,OU=ServiceUsers,O=Org", want: "CN=Kafka Server 1,OU=ServiceUsers,O=Org"},
		{rules: "", dn: "CN=a", want: "CN=a"},
		{rules: "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT", dn: "CN=Kafka Server 1,OU=ServiceUsers,O=Org,L=Santa Clara,ST=California,C=US", want: "Kafka Server 1"},
		{rules: "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT", dn: "CN=Kafka Server 1,OU=ServiceUsers,O=Org", want: "kafka server 1"},
		{rules: "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/U,DEFAULT", dn: "CN=Kafka Server 1,OU=ServiceUsers,O=Org", want: "KAFKA SERVER 1"},
		{rules: "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT", dn: "CN=Other,OU=People", want: "CN=Other,OU=People"},
		{rules: "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/", dn: "CN=Other,OU=People", noMatch: true},
		{rules: "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,DEFAULT", dn: "CN=Kafka Server 1,OU=ServiceUsers,O=Org,L=Santa Clara,ST=California,C=US", want: "kafka server 1@serviceusers"},
		{rules: "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT", dn: "cn=duke,ou=JavaSoft,o=Sun Microsystems", want: "duke"},
		// A reference to a group the pattern lacks is literal text.
		{rules: "RULE:^CN=(.*?),OU=.*$/$1@$4/,DEFAULT", dn: "CN=a,OU=b", want: "a@$4"},
		// Digits continue a group number while it stays a group.
		{rules: "RULE:^CN=(.*)$/$10/", dn: "CN=x", want: "x0"},
		// Escaped slash in pattern and replacement.
		{rules: `RULE:^CN=a\/b$/x\/y/`, dn: "CN=a/b", want: "x/y"},
		// Whitespace and empty rules around the list.
		{rules: "  RULE:^CN=(.*)$/$1/ ,, DEFAULT ", dn: "CN=z", want: "z"},
		{rules: "RULE:^CN=(.*)$/$0!/", dn: "CN=z", want: "CN=z!"},
	}
	for _, c := range cases {
		m, err := Parse(c.rules)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.rules, err)
		}
		got, ok := m.Name(c.dn)
		if c.noMatch {
			if ok {
				t.Errorf("%q on %q: got %q, want no match", c.rules, c.dn, got)
			}
			continue
		}
		if !ok || got != c.want {
			t.Errorf("%q on %q: got %q (%v), want %q", c.rules, c.dn, got, ok, c.want)
		}
	}
}

// Kafka's invalid-rule cases are refused.
func TestMapperInvalidRules(t *testing.T) {
	for _, r := range []string{
		"default", "DEFAUL", "DEFAULT/L", "DEFAULT/U",
		"RULE:CN=(.*?),OU=ServiceUsers.*/$1",
		"RULE:CN=(.*?),OU=ServiceUsers.*/$1/L/U",
		"RULE:CN=(.*?),OU=ServiceUsers.*/L",
		"RULE:CN=(.*?),OU=ServiceUsers.*/U",
		"RULE:CN=(.*?),OU=ServiceUsers.*/LU",
		"RULE:(?=x)/y/", // lookahead: not RE2
	} {
		if m, err := Parse(r); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", r, m)
		}
	}
}

func TestFormatDN(t *testing.T) {
	name := pkix.Name{
		CommonName:         "client, one",
		OrganizationalUnit: []string{"eng"},
		Organization:       []string{"Acme"},
		Country:            []string{"US"},
		Locality:           []string{"Santa Clara"},
		Province:           []string{"California"},
		SerialNumber:       "42",
		ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, Value: "example"},
		},
	}
	raw, err := asn1.Marshal(name.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	got, err := FormatDN(raw)
	if err != nil {
		t.Fatal(err)
	}
	// Go's ToRDNSequence orders C, ST, L, ..., O, OU, CN, SERIALNUMBER;
	// RFC 2253 prints them last first. SERIALNUMBER is not an RFC 2253
	// keyword: OID and hex DER, as Java prints it.
	want := `DC=example,2.5.4.5=#13023432,CN=client\, one,OU=eng,O=Acme,L=Santa Clara,ST=California,C=US`
	if got != want {
		t.Fatalf("FormatDN:\n got %s\nwant %s", got, want)
	}
	m, _ := Parse("RULE:^.*CN=(.*?),OU=.*$/$1/")
	if n, ok := m.Name(got); !ok || n != `client\, one` {
		t.Fatalf("mapped %q %v", n, ok)
	}
	if _, err := FormatDN([]byte{0x30, 0x03, 1}); err == nil {
		t.Fatal("a malformed subject formatted")
	}
	if s, _ := FormatDN(mustMarshal(t, pkix.Name{CommonName: " lead#"}.ToRDNSequence())); s != `CN=\ lead\#` {
		t.Fatalf("escaping: %s", s)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzParseRules: the parser never panics, and a mapper it builds maps any
// DN without panicking; a DEFAULT-only mapper is the identity.
func FuzzParseRules(f *testing.F) {
	for _, s := range []string{"DEFAULT", "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT", `RULE:a\/b/c\/d/U`, "RULE:x/y/Lz", ",,", "RULE:(/$99/", "RULE:^(.*)$/$1$2\\$/"} {
		f.Add(s, "CN=Kafka Server 1,OU=ServiceUsers,O=Org")
	}
	f.Fuzz(func(t *testing.T, rules, dn string) {
		m, err := Parse(rules)
		if err != nil {
			return
		}
		if len(dn) > 4096 {
			dn = dn[:4096]
		}
		name, ok := m.Name(dn)
		if strings.TrimSpace(rules) == "DEFAULT" && (!ok || name != dn) {
			t.Fatalf("DEFAULT mapped %q to %q", dn, name)
		}
	})
}

// FuzzFormatDN: any subject bytes format without panicking, and a subject
// Go's encoder wrote formats.
func FuzzFormatDN(f *testing.F) {
	for _, n := range []pkix.Name{{CommonName: "a"}, {CommonName: " x,+=#", Organization: []string{"o"}, OrganizationalUnit: []string{"u1", "u2"}}} {
		b, _ := asn1.Marshal(n.ToRDNSequence())
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = FormatDN(raw)
		var seq pkix.RDNSequence
		if rest, err := asn1.Unmarshal(raw, &seq); err != nil || len(rest) > 0 {
			return
		}
		for _, rdn := range seq {
			for _, atv := range rdn {
				if _, ok := atv.Value.(string); !ok {
					return
				}
			}
		}
		b, err := asn1.Marshal(seq)
		if err != nil {
			return
		}
		if _, err := FormatDN(b); err != nil {
			t.Fatalf("FormatDN of Go's encoding of %v: %v", seq, err)
		}
	})
}
