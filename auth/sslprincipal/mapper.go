// Package sslprincipal turns a TLS client certificate into a Kafka
// principal name, as Kafka's DefaultKafkaPrincipalBuilder and
// SslPrincipalMapper do: the certificate's subject formatted as Java's
// X500Principal.getName() (RFC 2253, "CN=client,OU=eng,O=acme"), then
// ssl.principal.mapping.rules.
//
// Rules (Kafka's syntax, KIP-371): a comma-separated list of
//
//	DEFAULT                          the DN unchanged
//	RULE:pattern/replacement/[L|U]   if pattern matches the whole DN, the
//	                                 DN with pattern replaced, optionally
//	                                 lower- or upper-cased
//
// tried in order; the first rule that applies names the principal, and a
// DN no rule applies to is refused (Kafka's NoMatchingRule, which fails
// the authentication). In pattern and replacement a backslash escapes the
// next character ("\/" is a literal slash); commas inside a RULE are part
// of it.
//
// Differences from Kafka: patterns are Go regular expressions (RE2), so a
// Java pattern using lookaround or backreferences is refused at start; a
// replacement that would add an empty match after the whole DN (".*")
// replaces once, where Java's replaceAll appends the replacement twice.
package sslprincipal

import (
	"fmt"
	"regexp"
	"strings"
)

// Mapper applies ssl.principal.mapping.rules. A Mapper is immutable and
// safe for concurrent use.
type Mapper struct {
	rules []rule
	text  string
}

type rule struct {
	isDefault   bool
	whole       *regexp.Regexp // pattern anchored at both ends: does it apply
	pattern     *regexp.Regexp // pattern as written, for the replacement
	replacement string         // Java replacement syntax ($n, \c)
	lower       bool
	upper       bool
}

// Default is Kafka's default ssl.principal.mapping.rules.
const Default = "DEFAULT"

// maxRulesBytes bounds the rules text (it comes from a config file, but a
// fuzzer or a mistake should not compile megabytes of regexps).
const maxRulesBytes = 64 << 10

// Parse parses ssl.principal.mapping.rules. An empty string is DEFAULT.
func Parse(rules string) (*Mapper, error) {
	if len(rules) > maxRulesBytes {
		return nil, fmt.Errorf("ssl.principal.mapping.rules: %d bytes, more than %d", len(rules), maxRulesBytes)
	}
	text := strings.TrimSpace(rules)
	if text == "" {
		text = Default
	}
	m := &Mapper{text: text}
	s := text
	for {
		s = strings.TrimLeft(s, " \t\r\n\f")
		if s == "" {
			break
		}
		var r rule
		var rest string
		var err error
		switch {
		case strings.HasPrefix(s, "RULE:"):
			r, rest, err = parseRule(s[len("RULE:"):])
			if err != nil {
				return nil, err
			}
			m.rules = append(m.rules, r)
		case strings.HasPrefix(s, "DEFAULT"):
			rest = s[len("DEFAULT"):]
			m.rules = append(m.rules, rule{isDefault: true})
		case s[0] == ',':
			// An empty rule, ignored as Kafka does.
			s = s[1:]
			continue
		default:
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			return nil, fmt.Errorf("ssl.principal.mapping.rules: invalid rule: `%s`", strings.TrimSpace(s[:end]))
		}
		rest = strings.TrimLeft(rest, " \t\r\n\f")
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			return nil, fmt.Errorf("ssl.principal.mapping.rules: invalid rule, unmatched substring: `%s`", strings.TrimSpace(rest[:end]))
		}
		s = rest[1:]
	}
	return m, nil
}

// parseRule parses what follows "RULE:": pattern/replacement/[LU].
func parseRule(s string) (rule, string, error) {
	pattern, s, ok := cutUnescaped(s)
	if !ok {
		return rule{}, "", fmt.Errorf("ssl.principal.mapping.rules: invalid rule RULE:%s: want RULE:pattern/replacement/[L|U]", s)
	}
	replacement, s, ok := cutUnescaped(s)
	if !ok {
		return rule{}, "", fmt.Errorf("ssl.principal.mapping.rules: invalid rule RULE:%s/%s: want RULE:pattern/replacement/[L|U]", pattern, s)
	}
	r := rule{replacement: replacement}
	if len(s) > 0 && s[0] == 'L' {
		r.lower, s = true, s[1:]
	} else if len(s) > 0 && s[0] == 'U' {
		r.upper, s = true, s[1:]
	}
	var err error
	if r.pattern, err = regexp.Compile(pattern); err != nil {
		return rule{}, "", fmt.Errorf("ssl.principal.mapping.rules: RULE:%s/%s/: %w", pattern, replacement, err)
	}
	// Anchored for Java's Matcher.matches (a whole-DN match). A pattern
	// that compiles alone but not inside a group (an unterminated \Q) is
	// refused.
	if r.whole, err = regexp.Compile(`^(?:` + pattern + `)$`); err != nil {
		return rule{}, "", fmt.Errorf("ssl.principal.mapping.rules: RULE:%s/%s/: %w", pattern, replacement, err)
	}
	return r, s, nil
}

// cutUnescaped returns s up to its first slash not escaped by a
// backslash, and what follows that slash. The escapes stay in the result
// (the pattern goes to the regexp compiler as written).
func cutUnescaped(s string) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // the escaped character, whatever it is
		case '/':
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// String is the rules as given (or DEFAULT).
func (m *Mapper) String() string { return m.text }

// Name maps a distinguished name (as FormatDN writes it) to the principal
// name. ok is false when no rule applies (Kafka refuses the connection).
// A nil Mapper is DEFAULT.
func (m *Mapper) Name(dn string) (name string, ok bool) {
	if m == nil {
		return dn, true
	}
	for i := range m.rules {
		if name, ok := m.rules[i].apply(dn); ok {
			return name, true
		}
	}
	return "", false
}

func (r *rule) apply(dn string) (string, bool) {
	if r.isDefault {
		return dn, true
	}
	if !r.whole.MatchString(dn) {
		return "", false
	}
	groups := r.pattern.NumSubexp()
	var b strings.Builder
	last := 0
	for _, loc := range r.pattern.FindAllStringSubmatchIndex(dn, -1) {
		b.WriteString(dn[last:loc[0]])
		expandJava(&b, r.replacement, dn, loc, groups)
		last = loc[1]
	}
	b.WriteString(dn[last:])
	out := b.String()
	switch {
	case r.lower:
		out = strings.ToLower(out)
	case r.upper:
		out = strings.ToUpper(out)
	}
	return out, true
}

// expandJava writes Java's Matcher.appendReplacement expansion of repl for
// the match loc: "\c" is c, "$n" is group n (digits taken while the number
// stays a group, as Java does). A reference to a group the pattern does
// not have is literal text, as Kafka's escapeLiteralBackReferences makes
// it; "${name}" names a group.
func expandJava(b *strings.Builder, repl, s string, loc []int, groups int) {
	group := func(n int) {
		if lo, hi := loc[2*n], loc[2*n+1]; lo >= 0 {
			b.WriteString(s[lo:hi])
		}
	}
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		switch {
		case c == '\\' && i+1 < len(repl):
			i++
			b.WriteByte(repl[i])
		case c == '$' && i+1 < len(repl) && repl[i+1] >= '0' && repl[i+1] <= '9':
			n := int(repl[i+1] - '0')
			if n > groups {
				b.WriteByte('$') // not a group: literal, digits follow as text
				continue
			}
			j := i + 2
			for j < len(repl) && repl[j] >= '0' && repl[j] <= '9' {
				next := n*10 + int(repl[j]-'0')
				if next > groups {
					break
				}
				n = next
				j++
			}
			group(n)
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
}
