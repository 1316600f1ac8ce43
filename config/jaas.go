package config

import (
	"errors"
	"fmt"
	"strings"
)

// JAASModule is one login module of a sasl.jaas.config value, as Kafka's
// JaasConfig reads it:
//
//	<login module class> <required|requisite|sufficient|optional> [<key>=<value> ...];
//
// A value is a word (letters, digits and . _ - $) or a double-quoted string
// (backslash escapes \" \\ \n \t \r \b \f). Comments (// to the end of the
// line, /* ... */) are skipped, as Java's StreamTokenizer does for Kafka.
type JAASModule struct {
	LoginModule string
	Flag        string
	Options     map[string]string
	// Keys are the option keys in the order written (a key written twice
	// is refused, as Kafka refuses it).
	Keys []string
}

// PlainLoginModule is the login module of SASL/PLAIN's broker-side users.
const PlainLoginModule = "org.apache.kafka.common.security.plain.PlainLoginModule"

// jaasMaxBytes bounds a sasl.jaas.config value (a config line).
const jaasMaxBytes = 1 << 20

// ParseJAAS parses a sasl.jaas.config value. Like Kafka's broker, it wants
// exactly one login module. Errors never quote option values (they may be
// passwords).
func ParseJAAS(s string) (JAASModule, error) {
	if len(s) > jaasMaxBytes {
		return JAASModule{}, fmt.Errorf("sasl.jaas.config: %d bytes, more than %d", len(s), jaasMaxBytes)
	}
	t := jaasTokenizer{s: s}
	var mods []JAASModule
	for {
		tok, err := t.next()
		if err != nil {
			return JAASModule{}, err
		}
		if tok.kind == tokEOF {
			break
		}
		if tok.kind != tokWord {
			return JAASModule{}, errors.New("sasl.jaas.config: expected a login module class name")
		}
		m := JAASModule{LoginModule: tok.text, Options: map[string]string{}}
		flag, err := t.next()
		if err != nil {
			return JAASModule{}, err
		}
		switch f := strings.ToLower(flag.text); {
		case flag.kind == tokWord && (f == "required" || f == "requisite" || f == "sufficient" || f == "optional"):
			m.Flag = f
		default:
			return JAASModule{}, fmt.Errorf("sasl.jaas.config: login module %s: control flag must be required, requisite, sufficient or optional", m.LoginModule)
		}
		for {
			key, err := t.next()
			if err != nil {
				return JAASModule{}, err
			}
			if key.kind == tokSemicolon {
				break
			}
			if key.kind != tokWord {
				return JAASModule{}, fmt.Errorf("sasl.jaas.config: login module %s: expected an option key or ';'", m.LoginModule)
			}
			eq, err := t.next()
			if err != nil {
				return JAASModule{}, err
			}
			if eq.kind != tokEquals {
				return JAASModule{}, fmt.Errorf("sasl.jaas.config: option %s: expected '='", key.text)
			}
			val, err := t.next()
			if err != nil {
				return JAASModule{}, err
			}
			if val.kind != tokWord && val.kind != tokQuoted {
				return JAASModule{}, fmt.Errorf("sasl.jaas.config: option %s: expected a value", key.text)
			}
			if _, dup := m.Options[key.text]; dup {
				return JAASModule{}, fmt.Errorf("sasl.jaas.config: option %s appears twice", key.text)
			}
			m.Options[key.text] = val.text
			m.Keys = append(m.Keys, key.text)
		}
		mods = append(mods, m)
	}
	if len(mods) != 1 {
		return JAASModule{}, fmt.Errorf("sasl.jaas.config: JAAS config property contains %d login modules, should be 1 module", len(mods))
	}
	return mods[0], nil
}

// PlainUsers returns the users of a PlainLoginModule: user_<name>="<password>".
func (m *JAASModule) PlainUsers() map[string]string {
	users := map[string]string{}
	for _, k := range m.Keys {
		if name, ok := strings.CutPrefix(k, "user_"); ok {
			users[name] = m.Options[k]
		}
	}
	return users
}

// String writes the module back in JAAS syntax, every value quoted (for
// tests: ParseJAAS(m.String()) gives m).
func (m *JAASModule) String() string {
	var b strings.Builder
	b.WriteString(m.LoginModule + " " + m.Flag)
	for _, k := range m.Keys {
		b.WriteString(" " + k + "=\"")
		v := m.Options[k]
		for i := 0; i < len(v); i++ {
			switch r := v[i]; r {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteByte(r)
			case '\n':
				b.WriteString(`\n`)
			case '\t':
				b.WriteString(`\t`)
			case '\r':
				b.WriteString(`\r`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			default:
				b.WriteByte(r)
			}
		}
		b.WriteByte('"')
	}
	b.WriteString(";")
	return b.String()
}

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokWord
	tokQuoted
	tokEquals
	tokSemicolon
)

type jaasToken struct {
	kind tokKind
	text string
}

type jaasTokenizer struct {
	s string
	i int
}

func jaasWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == '$' || c >= 0x80
}

func (t *jaasTokenizer) next() (jaasToken, error) {
	for t.i < len(t.s) {
		c := t.s[t.i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			t.i++
		case strings.HasPrefix(t.s[t.i:], "//"):
			if j := strings.IndexByte(t.s[t.i:], '\n'); j >= 0 {
				t.i += j + 1
			} else {
				t.i = len(t.s)
			}
		case strings.HasPrefix(t.s[t.i:], "/*"):
			j := strings.Index(t.s[t.i+2:], "*/")
			if j < 0 {
				return jaasToken{}, errors.New("sasl.jaas.config: unterminated /* comment")
			}
			t.i += 2 + j + 2
		case c == '=':
			t.i++
			return jaasToken{kind: tokEquals}, nil
		case c == ';':
			t.i++
			return jaasToken{kind: tokSemicolon}, nil
		case c == '"':
			return t.quoted()
		case jaasWordByte(c):
			j := t.i
			for j < len(t.s) && jaasWordByte(t.s[j]) {
				j++
			}
			w := t.s[t.i:j]
			t.i = j
			return jaasToken{kind: tokWord, text: w}, nil
		default:
			return jaasToken{}, fmt.Errorf("sasl.jaas.config: unexpected character %q at offset %d", c, t.i)
		}
	}
	return jaasToken{kind: tokEOF}, nil
}

func (t *jaasTokenizer) quoted() (jaasToken, error) {
	var b strings.Builder
	for j := t.i + 1; j < len(t.s); j++ {
		c := t.s[j]
		switch c {
		case '"':
			t.i = j + 1
			return jaasToken{kind: tokQuoted, text: b.String()}, nil
		case '\\':
			j++
			if j == len(t.s) {
				return jaasToken{}, errors.New("sasl.jaas.config: unterminated quoted value")
			}
			switch e := t.s[j]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return jaasToken{}, errors.New("sasl.jaas.config: unterminated quoted value")
}
