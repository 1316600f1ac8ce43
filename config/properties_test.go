package config

import (
	"bufio"
	"bytes"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseProperties(t *testing.T) {
	type kv struct {
		key, value string
		line       int
	}
	tests := []struct {
		name string
		in   string
		want []kv
	}{
		{"equals", "a=b", []kv{{"a", "b", 1}}},
		{"colon", "a:b", []kv{{"a", "b", 1}}},
		{"space separator", "a b", []kv{{"a", "b", 1}}},
		{"spaces around equals", "a  =  b", []kv{{"a", "b", 1}}},
		{"tab and formfeed", "\ta\t=\fb", []kv{{"a", "b", 1}}},
		{"second separator is value", "a==b", []kv{{"a", "=b", 1}}},
		{"space then colon", "a : b:c", []kv{{"a", "b:c", 1}}},
		{"trailing whitespace kept", "a=b  ", []kv{{"a", "b  ", 1}}},
		{"key only", "a", []kv{{"a", "", 1}}},
		{"key and separator", "a=", []kv{{"a", "", 1}}},
		{"empty key", "=b", []kv{{"", "b", 1}}},
		{"comments", "# c\n! c\n  # indented\na=1", []kv{{"a", "1", 4}}},
		{"hash inside value", "a=b#c", []kv{{"a", "b#c", 1}}},
		{"blank lines", "\n\n  \na=1\n\n", []kv{{"a", "1", 4}}},
		{"crlf and cr", "a=1\r\nb=2\rc=3", []kv{{"a", "1", 1}, {"b", "2", 2}, {"c", "3", 3}}},
		{"continuation", "a=x,\\\n    y,\\\n  z\nb=2", []kv{{"a", "x,y,z", 1}, {"b", "2", 4}}},
		{"continuation line starting with hash is not a comment", "a=1\\\n#2", []kv{{"a", "1#2", 1}}},
		{"even backslashes do not continue", "a=1\\\\\nb=2", []kv{{"a", `1\`, 1}, {"b", "2", 2}}},
		{"trailing backslash at eof", "a=1\\", []kv{{"a", "1", 1}}},
		{"escaped separators in key", `a\=b\:c\ d=e`, []kv{{"a=b:c d", "e", 1}}},
		{"escapes", `a=\t\n\r\f\\\x\"`, []kv{{"a", "\t\n\r\f\\x\"", 1}}},
		{"unicode escape", `a=\u0041\u00e9\u20AC`, []kv{{"a", "Aé€", 1}}},
		{"surrogate pair", `a=\uD83D\uDE00`, []kv{{"a", "😀", 1}}},
		{"lone surrogate", `a=\uD83Dx`, []kv{{"a", "\uFFFDx", 1}}},
		{"utf8 passes through", "a=ünïcödé", []kv{{"a", "ünïcödé", 1}}},
		{"duplicates all returned", "a=1\na=2", []kv{{"a", "1", 1}, {"a", "2", 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := parseProperties(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var got []kv
			for _, e := range es {
				got = append(got, kv(e))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParsePropertiesErrors(t *testing.T) {
	for _, in := range []string{`a=\u12`, `a=\uZZZZ`, "x=1\n" + `\u00G0=1`} {
		if _, err := parseProperties(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("%q: err = %v, want malformed \\uxxxx", in, err)
		}
	}
	_, err := parseProperties(strings.NewReader("x=1\ny=\\u12"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error should name line 2: %v", err)
	}
	long := "a=" + strings.Repeat(strings.Repeat("x", 63)+"\\\n", maxLogicalLineBytes/63+10)
	if _, err := parseProperties(strings.NewReader(long)); err == nil {
		t.Error("endless continuation should be refused")
	}
}

// checkRoundTrip asserts that writing entries with writeProperty and reading
// them back gives the same keys and values.
func checkRoundTrip(t *testing.T, es []entry) {
	t.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	for _, e := range es {
		writeProperty(w, e.key, e.value)
	}
	w.Flush()
	back, err := parseProperties(&buf)
	if err != nil {
		t.Fatalf("re-reading %q: %v", buf.String(), err)
	}
	if len(back) != len(es) {
		t.Fatalf("wrote %d entries, read %d back from %q", len(es), len(back), buf.String())
	}
	for i := range es {
		if back[i].key != es[i].key || back[i].value != es[i].value {
			t.Fatalf("entry %d: wrote %q=%q, read %q=%q (text %q)", i, es[i].key, es[i].value, back[i].key, back[i].value, buf.String())
		}
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	checkRoundTrip(t, []entry{
		{key: "plain", value: "value"},
		{key: " lead space key", value: "  lead space value"},
		{key: "k=e:y", value: "v=a:l"},
		{key: "#notacomment", value: "#x"},
		{key: "!bang", value: "!x"},
		{key: "tabs\tand\nnewlines", value: "a\tb\nc\rd\fe\\"},
		{key: "", value: ""},
		{key: "ctrl\x01", value: "\x7f\x00"},
		{key: "unicode é😀", value: "€"},
		{key: "trailing", value: "space  "},
		{key: "endsbackslash", value: `x\`},
	})
}

// FuzzParse checks the reader against its invariants: it never panics; what it
// reads, written back with writeProperty, reads back identically; and Parse
// (typed keys, validation) never panics on any input.
func FuzzParse(f *testing.F) {
	f.Add([]byte("a=b\n"))
	f.Add([]byte("listeners=PLAINTEXT://[::1]:0\nlog.retention.minutes=5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := parseProperties(bytes.NewReader(data))
		if err == nil {
			valid := true
			for _, e := range es {
				if !utf8.ValidString(e.key) || !utf8.ValidString(e.value) {
					valid = false // invalid bytes are written as U+FFFD by design
				}
			}
			if valid {
				checkRoundTrip(t, es)
			}
		}
		c, _, err := Parse(bytes.NewReader(data), "fuzz")
		if err == nil && utf8.Valid(data) {
			// A config that parsed must print and parse back to itself.
			var out bytes.Buffer
			c.Print(&out)
			c2, _, err := Parse(&out, "printed")
			if err != nil {
				t.Fatalf("printed config does not parse: %v\n%s", err, out.String())
			}
			if a, b := effective(c), effective(c2); !reflect.DeepEqual(a, b) {
				t.Fatalf("round trip changed config:\n%v\n%v", a, b)
			}
		}
	})
}

// effective returns every canonical key's printed value.
func effective(c *Config) map[string]string {
	m := map[string]string{}
	for i := range specs {
		if specs[i].canon == "" && specs[i].broker() {
			m[specs[i].name] = specs[i].get(c)
		}
	}
	return m
}

func TestReadProperties(t *testing.T) {
	m, err := ReadProperties(strings.NewReader("#c\nversion=1\ncluster.id : abc\nnode.id=3\nnode.id=4\nlong=a\\\n  b\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"version": "1", "cluster.id": "abc", "node.id": "4", "long": "ab"}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %v, want %v", m, want)
	}
	if _, err := ReadProperties(strings.NewReader("k=\\u12\n")); err == nil {
		t.Fatal("malformed escape accepted")
	}
}
