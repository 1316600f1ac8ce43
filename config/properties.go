package config

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file reads and writes java.util.Properties syntax, the format of Kafka's
// server.properties, so an operator's existing file loads unchanged.
//
// The grammar, as java.util.Properties.load(Reader) defines it:
//
//	natural line  ends at \n, \r or \r\n
//	logical line  natural lines joined while a line ends in an odd number of
//	              backslashes; the joining backslash and the next line's leading
//	              whitespace (space, \t, \f) are dropped
//	comment       a logical line whose first non-whitespace char is '#' or '!'
//	              (a continuation line starting with '#' is NOT a comment)
//	key           up to the first unescaped '=', ':' or whitespace
//	separator     whitespace, then at most one '=' or ':', then whitespace
//	value         the rest of the line (trailing whitespace kept, as in Java;
//	              typed values are trimmed later, as Kafka's ConfigDef does)
//	escapes       \t \n \r \f, \uXXXX (surrogate pairs combined), and \c for any
//	              other c means c itself
//
// Deliberate difference from Java: Properties.load(InputStream), which Kafka uses,
// decodes bytes as ISO-8859-1; we read UTF-8 (identical for ASCII, which is what
// every real server.properties contains), and a malformed \uXXXX is an error
// naming the line instead of an IllegalArgumentException.

// entry is one key/value pair read from a properties file, with the line number
// (1-based) of the natural line where its logical line starts.
type entry struct {
	key, value string
	line       int
}

// maxLogicalLineBytes bounds one logical line so a hostile file of endless
// continuation lines cannot grow memory without bound.
const maxLogicalLineBytes = 1 << 20

func isPropSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

// parseProperties reads every key/value pair of r in file order. Duplicate keys
// are all returned; the caller decides (last one wins, as in Java).
func parseProperties(r io.Reader) ([]entry, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var entries []entry
	lines := splitNaturalLines(string(data))
	for i := 0; i < len(lines); i++ {
		startLine := i + 1
		line := strings.TrimLeft(lines[i], " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		// Join continuation lines.
		var logical strings.Builder
		for {
			if endsInOddBackslashes(line) {
				logical.WriteString(line[:len(line)-1])
				if logical.Len() > maxLogicalLineBytes {
					return nil, fmt.Errorf("line %d: logical line longer than %d bytes", startLine, maxLogicalLineBytes)
				}
				i++
				if i >= len(lines) {
					break // a trailing backslash at end of file is dropped, as in Java
				}
				line = strings.TrimLeft(lines[i], " \t\f")
				continue
			}
			logical.WriteString(line)
			break
		}
		if logical.Len() > maxLogicalLineBytes {
			return nil, fmt.Errorf("line %d: logical line longer than %d bytes", startLine, maxLogicalLineBytes)
		}
		key, value, err := splitKeyValue(logical.String())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", startLine, err)
		}
		entries = append(entries, entry{key: key, value: value, line: startLine})
	}
	return entries, nil
}

// splitNaturalLines splits on \n, \r and \r\n.
func splitNaturalLines(s string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n':
			lines = append(lines, s[start:i])
			start = i + 1
		case '\r':
			lines = append(lines, s[start:i])
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			start = i + 1
		}
	}
	if start < len(s) {
		lines = append(lines, s[start:])
	}
	return lines
}

func endsInOddBackslashes(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitKeyValue splits a logical line (leading whitespace already removed,
// continuation backslashes already removed) into its unescaped key and value.
func splitKeyValue(s string) (string, string, error) {
	keyEnd := len(s)
	valueStart := len(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			i++ // skip the escaped char, whatever it is
			continue
		}
		if c == '=' || c == ':' {
			keyEnd, valueStart = i, i+1
			break
		}
		if isPropSpace(c) {
			keyEnd = i
			j := i
			for j < len(s) && isPropSpace(s[j]) {
				j++
			}
			if j < len(s) && (s[j] == '=' || s[j] == ':') {
				j++
			}
			valueStart = j
			break
		}
	}
	for valueStart < len(s) && isPropSpace(s[valueStart]) {
		valueStart++
	}
	key, err := unescape(s[:keyEnd])
	if err != nil {
		return "", "", fmt.Errorf("key: %w", err)
	}
	value, err := unescape(s[valueStart:])
	if err != nil {
		return "", "", fmt.Errorf("key %q: %w", key, err)
	}
	return key, value, nil
}

// unescape resolves Java properties escapes.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	var pendingHigh rune = -1 // a high surrogate from \uD8xx waiting for its pair
	flushHigh := func() {
		if pendingHigh >= 0 {
			b.WriteRune(utf8.RuneError)
			pendingHigh = -1
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			flushHigh()
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			flushHigh()
			break // lone trailing backslash: dropped, as in Java
		}
		switch c = s[i]; c {
		case 't':
			flushHigh()
			b.WriteByte('\t')
		case 'n':
			flushHigh()
			b.WriteByte('\n')
		case 'r':
			flushHigh()
			b.WriteByte('\r')
		case 'f':
			flushHigh()
			b.WriteByte('\f')
		case 'u':
			if i+4 >= len(s) {
				return "", fmt.Errorf("malformed \\uxxxx encoding")
			}
			var r rune
			for _, h := range []byte(s[i+1 : i+5]) {
				var v byte
				switch {
				case h >= '0' && h <= '9':
					v = h - '0'
				case h >= 'a' && h <= 'f':
					v = h - 'a' + 10
				case h >= 'A' && h <= 'F':
					v = h - 'A' + 10
				default:
					return "", fmt.Errorf("malformed \\uxxxx encoding")
				}
				r = r<<4 | rune(v)
			}
			i += 4
			switch {
			case utf16.IsSurrogate(r) && r < 0xDC00:
				flushHigh()
				pendingHigh = r
			case utf16.IsSurrogate(r):
				if pendingHigh >= 0 {
					b.WriteRune(utf16.DecodeRune(pendingHigh, r))
					pendingHigh = -1
				} else {
					b.WriteRune(utf8.RuneError)
				}
			default:
				flushHigh()
				b.WriteRune(r)
			}
		default:
			flushHigh()
			b.WriteByte(c)
		}
	}
	flushHigh()
	return b.String(), nil
}

// escapeKey and escapeValue write s so that parseProperties reads it back as s.
// Keys escape every separator; values escape only what would change meaning:
// leading whitespace, backslashes, line breaks, and a leading '#'/'!' is
// harmless in a value so it is left alone.
func escapeKey(s string) string   { return escape(s, true) }
func escapeValue(s string) string { return escape(s, false) }

func escape(s string, isKey bool) string {
	var b strings.Builder
	for i, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\f':
			b.WriteString(`\f`)
		case ' ':
			if isKey || i == 0 {
				b.WriteString(`\ `)
			} else {
				b.WriteByte(' ')
			}
		case '=', ':':
			if isKey {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		case '#', '!':
			if isKey && i == 0 {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		default:
			if r == utf8.RuneError || r < 0x20 || r == 0x7f {
				// Control chars and invalid UTF-8 go out as \uXXXX so the
				// file stays printable text; invalid bytes become U+FFFD.
				fmt.Fprintf(&b, `\u%04X`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// writeProperty writes one key=value line.
func writeProperty(w *bufio.Writer, key, value string) {
	w.WriteString(escapeKey(key))
	w.WriteByte('=')
	w.WriteString(escapeValue(value))
	w.WriteByte('\n')
}

// ReadProperties reads java.util.Properties text (server.properties,
// meta.properties) into a map; a key set twice keeps its last value, as in
// Java. Values are as written (trailing whitespace kept); callers trim typed
// values, as Kafka's ConfigDef does.
func ReadProperties(r io.Reader) (map[string]string, error) {
	entries, err := parseProperties(r)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		out[e.key] = e.value
	}
	return out, nil
}
