package sslprincipal

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf16"
)

// FormatDN writes a certificate subject (DER RDNSequence, as in
// x509.Certificate.RawSubject) the way Java's X500Principal.getName()
// does, which is the string Kafka's principal mapping rules see: RFC 2253,
// the last RDN first, attributes of a multi-valued RDN joined by '+';
// the keywords CN, C, L, ST, O, OU, STREET, DC and UID, any other
// attribute as its dotted OID and '#' with the hex of its DER value (an
// e-mail address too: "1.2.840.113549.1.9.1=#16..."); in values the
// characters , = + < > # ; " \ are escaped with a backslash, as are a
// leading or trailing space.
func FormatDN(rawSubject []byte) (string, error) {
	var seq []rdnSET
	rest, err := asn1.Unmarshal(rawSubject, &seq)
	if err != nil {
		return "", fmt.Errorf("certificate subject: %w", err)
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("certificate subject: %d trailing bytes", len(rest))
	}
	var b strings.Builder
	for i := len(seq) - 1; i >= 0; i-- {
		if i != len(seq)-1 {
			b.WriteByte(',')
		}
		for j, a := range seq[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			writeATV(&b, a)
		}
	}
	return b.String(), nil
}

// SubjectDN is FormatDN of cert's subject.
func SubjectDN(cert *x509.Certificate) (string, error) { return FormatDN(cert.RawSubject) }

// rdnSET is one RDN: encoding/asn1 reads a type named ...SET as SET OF.
type rdnSET []rawATV

type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rfc2253Keywords are the attribute names Java's RFC 2253 output uses.
var rfc2253Keywords = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.9":                    "STREET",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
}

func writeATV(b *strings.Builder, a rawATV) {
	oid := a.Type.String()
	kw, known := rfc2253Keywords[oid]
	s, isString := stringValue(a.Value)
	if !known || !isString {
		b.WriteString(oid)
		b.WriteString("=#")
		b.WriteString(hex.EncodeToString(a.Value.FullBytes))
		return
	}
	b.WriteString(kw)
	b.WriteByte('=')
	writeEscaped(b, s)
}

// stringValue decodes the ASN.1 string types a directory string may be.
func stringValue(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String, asn1.TagT61String, asn1.TagNumericString:
		return string(v.Bytes), true
	case asn1.TagBMPString:
		if len(v.Bytes)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
		}
		return string(utf16.Decode(u)), true
	case 28: // UniversalString, UTF-32BE
		if len(v.Bytes)%4 != 0 {
			return "", false
		}
		var sb strings.Builder
		for i := 0; i < len(v.Bytes); i += 4 {
			sb.WriteRune(rune(uint32(v.Bytes[i])<<24 | uint32(v.Bytes[i+1])<<16 | uint32(v.Bytes[i+2])<<8 | uint32(v.Bytes[i+3])))
		}
		return sb.String(), true
	}
	return "", false
}

func writeEscaped(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case strings.IndexByte(`,=+<>#;"\`, c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == ' ' && (i == 0 || i == len(s)-1):
			b.WriteString(`\ `)
		default:
			b.WriteByte(c)
		}
	}
}
