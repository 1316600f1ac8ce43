// Package tlsrec is a TLS 1.3 record layer (RFC 8446 section 5) for a
// connection whose handshake crypto/tls completed: it decrypts records in
// place in the caller's buffers and seals plaintext into the caller's send
// buffers, so an event loop can serve a TLS connection without a goroutine
// or an extra copy per record.
//
// It speaks only TLS 1.3 with the AEAD suites TLS_AES_128_GCM_SHA256,
// TLS_AES_256_GCM_SHA384 and TLS_CHACHA20_POLY1305_SHA256, the server side
// (reads with the client's application traffic secret, writes with the
// server's). It handles KeyUpdate (both directions), alerts (close_notify
// ends the stream cleanly, anything else is fatal), padding, the record
// size limits (2^14 plaintext, 2^14+256 ciphertext) and sequence number
// exhaustion. Post-handshake messages other than KeyUpdate are refused:
// the server disables session tickets and never asks for post-handshake
// authentication, so a client has no reason to send any.
//
// A record on the wire:
//
//	+------+---------+--------+----------------------------------------+
//	| 0x17 | 0x03 03 | length | AEAD(plaintext | inner type | 0-padding) |
//	+------+---------+--------+----------------------------------------+
//	  1 B     2 B       2 B      length bytes (includes the 16 B tag)
//
// The 5 header bytes are the additional data; the nonce is the traffic
// IV XOR the 64-bit record sequence number (left-padded to 12 bytes).
//
// A Conn is not safe for concurrent use: one owner (an event loop) calls
// Open and the sealing methods.
package tlsrec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"
)

// Record layer limits (RFC 8446 section 5.1, 5.2).
const (
	HeaderBytes        = 5
	MaxPlaintextBytes  = 1 << 14
	MaxCiphertextBytes = 1<<14 + 256
	// MaxRecordBytes is the largest record on the wire, header included.
	MaxRecordBytes = HeaderBytes + MaxCiphertextBytes
	tagBytes       = 16
	// SealOverheadBytes is what sealing adds to a record's plaintext:
	// header, inner content type, tag.
	SealOverheadBytes = HeaderBytes + 1 + tagBytes
)

// Content types.
const (
	typeAlert           = 21
	typeHandshake       = 22
	typeApplicationData = 23
)

// Alert descriptions we send or recognise.
const (
	alertCloseNotify       = 0
	alertUnexpectedMessage = 10
	alertBadRecordMAC      = 20
	alertRecordOverflow    = 22
	alertDecodeError       = 50
	alertInternalError     = 80
	alertUserCanceled      = 90
	handshakeTypeKeyUpdate = 24
	keyUpdateNotRequested  = 0
	keyUpdateRequested     = 1
	maxUselessRecords      = 16
)

// ErrCloseNotify reports that the peer closed its side with close_notify:
// the stream ended cleanly.
var ErrCloseNotify = errors.New("tls: peer sent close_notify")

// Error is a fatal record layer error. Alert is the alert description to
// send the peer (0 when the peer sent the alert: Received).
type Error struct {
	Alert    uint8
	Received bool
	Msg      string
}

func (e *Error) Error() string {
	if e.Received {
		return fmt.Sprintf("tls: peer sent fatal alert %d", e.Alert)
	}
	return "tls: " + e.Msg
}

func fatal(alert uint8, msg string) error { return &Error{Alert: alert, Msg: msg} }

// Supported reports whether suite can be served by this package.
func Supported(version, suite uint16) bool {
	if version != tls.VersionTLS13 {
		return false
	}
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256:
		return true
	}
	return false
}

// direction is one half of the connection: a traffic secret, the AEAD
// and IV derived from it, and the next record's sequence number.
type direction struct {
	suite  uint16
	secret []byte
	aead   cipher.AEAD
	iv     [12]byte
	nonce  [12]byte
	seq    uint64
	// updates counts the KeyUpdates applied.
	updates int
}

func suiteHash(suite uint16) func() hash.Hash {
	if suite == tls.TLS_AES_256_GCM_SHA384 {
		return sha512.New384
	}
	return sha256.New
}

// expandLabel is HKDF-Expand-Label (RFC 8446 section 7.1) with an empty
// context.
func expandLabel(h func() hash.Hash, secret []byte, label string, n int) ([]byte, error) {
	info := make([]byte, 0, 4+6+len(label))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, 0)
	return hkdf.Expand(h, secret, string(info), n)
}

func (d *direction) setSecret(suite uint16, secret []byte) error {
	h := suiteHash(suite)
	keyBytes := 32
	if suite == tls.TLS_AES_128_GCM_SHA256 {
		keyBytes = 16
	}
	key, err := expandLabel(h, secret, "key", keyBytes)
	if err != nil {
		return err
	}
	iv, err := expandLabel(h, secret, "iv", 12)
	if err != nil {
		return err
	}
	var aead cipher.AEAD
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384:
		block, err := aes.NewCipher(key)
		if err != nil {
			return err
		}
		if aead, err = cipher.NewGCM(block); err != nil {
			return err
		}
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		if aead, err = chacha20poly1305.New(key); err != nil {
			return err
		}
	default:
		return fmt.Errorf("tls: cipher suite %#04x not supported by the record layer", suite)
	}
	d.suite, d.secret, d.aead, d.seq = suite, secret, aead, 0
	copy(d.iv[:], iv)
	return nil
}

// update moves to the next traffic secret (KeyUpdate, RFC 8446 7.2).
func (d *direction) update() error {
	h := suiteHash(d.suite)
	next, err := expandLabel(h, d.secret, "traffic upd", h().Size())
	if err != nil {
		return err
	}
	if err := d.setSecret(d.suite, next); err != nil {
		return err
	}
	d.updates++
	return nil
}

// nextNonce returns the nonce of the next record and advances seq; an
// exhausted sequence space is fatal (a KeyUpdate would be due long
// before: 2^64 records).
func (d *direction) nextNonce() ([]byte, error) {
	if d.seq == ^uint64(0) {
		return nil, fatal(alertInternalError, "record sequence number exhausted")
	}
	d.nonce = d.iv
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], d.seq)
	for i := range s {
		d.nonce[4+i] ^= s[i]
	}
	d.seq++
	return d.nonce[:], nil
}

// Conn is the record layer of one server-side TLS 1.3 connection.
type Conn struct {
	in, out direction
	// partial holds a record that straddles input buffers (at most
	// MaxRecordBytes; allocated on the first straddle, kept).
	partial []byte
	// hs holds a KeyUpdate message split across records (at most its 5
	// bytes).
	hs []byte
	// updatePending: the peer asked for a KeyUpdate; ours goes out before
	// the next record we seal.
	updatePending bool
	// requestPeer: our pending KeyUpdate asks the peer to update too.
	requestPeer bool
	// useless counts consecutive records that carried nothing (empty
	// application data, warnings): a peer sending only those is making us
	// spend AEAD work for nothing (crypto/tls allows 16 as well).
	useless int
	closed  bool
}

// NewServer returns the record layer of a server whose handshake agreed on
// suite and derived the given application traffic secrets (the
// CLIENT_TRAFFIC_SECRET_0 and SERVER_TRAFFIC_SECRET_0 of the key log).
// Both sequence numbers start at 0: the handshake must not have sent or
// received an application-keyed record (no session tickets).
func NewServer(suite uint16, clientSecret, serverSecret []byte) (*Conn, error) {
	c := &Conn{}
	if err := c.in.setSecret(suite, append([]byte(nil), clientSecret...)); err != nil {
		return nil, err
	}
	if err := c.out.setSecret(suite, append([]byte(nil), serverSecret...)); err != nil {
		return nil, err
	}
	return c, nil
}

// Buffered is how many received bytes the Conn holds (a record that
// straddles input buffers).
func (c *Conn) Buffered() int { return len(c.partial) + len(c.hs) }

// KeyUpdates reports how many times each side's keys changed.
func (c *Conn) KeyUpdates() (read, write int) { return c.in.updates, c.out.updates }

// Closed reports whether the stream ended: close_notify or a fatal error
// (no record of ours should follow but a fatal alert).
func (c *Conn) Closed() bool { return c.closed }

// Release drops the Conn's held bytes.
func (c *Conn) Release() { c.partial, c.hs = nil, nil }

// Open decrypts the records in ciphertext, in place, and passes each
// record's application data to deliver (which must not keep the slice: it
// aliases ciphertext or the Conn's reassembly buffer). A record cut at the
// end of ciphertext is kept until the next call completes it. Protocol
// records are handled here (KeyUpdate, alerts). Open stops at the first
// error: ErrCloseNotify when the peer closed cleanly, an *Error when the
// connection must end (send AppendAlert's record first where possible),
// or deliver's error.
func (c *Conn) Open(ciphertext []byte, deliver func(plaintext []byte) error) error {
	if c.closed {
		return fatal(alertUnexpectedMessage, "record after close")
	}
	for len(ciphertext) > 0 {
		if len(c.partial) > 0 {
			need := HeaderBytes
			if len(c.partial) >= HeaderBytes {
				need = HeaderBytes + int(binary.BigEndian.Uint16(c.partial[3:5]))
			}
			take := min(need-len(c.partial), len(ciphertext))
			c.partial = append(c.partial, ciphertext[:take]...)
			ciphertext = ciphertext[take:]
			if len(c.partial) == HeaderBytes {
				if err := checkHeader(c.partial); err != nil {
					return c.fail(err)
				}
				continue // now the length is known
			}
			if len(c.partial) < need {
				return nil
			}
			err := c.openRecord(c.partial, deliver)
			c.partial = c.partial[:0]
			if err != nil {
				return c.fail(err)
			}
			continue
		}
		if len(ciphertext) < HeaderBytes {
			c.keep(ciphertext)
			return nil
		}
		if err := checkHeader(ciphertext); err != nil {
			return c.fail(err)
		}
		n := HeaderBytes + int(binary.BigEndian.Uint16(ciphertext[3:5]))
		if len(ciphertext) < n {
			c.keep(ciphertext)
			return nil
		}
		if err := c.openRecord(ciphertext[:n], deliver); err != nil {
			return c.fail(err)
		}
		ciphertext = ciphertext[n:]
	}
	return nil
}

func (c *Conn) fail(err error) error {
	c.closed = true
	return err
}

func (c *Conn) keep(b []byte) {
	if c.partial == nil {
		c.partial = make([]byte, 0, MaxRecordBytes)
	}
	c.partial = append(c.partial, b...)
}

// checkHeader validates a record header (5 bytes) before its body is
// awaited: after the handshake only application_data records are valid.
func checkHeader(h []byte) error {
	if h[0] != typeApplicationData {
		return fatal(alertUnexpectedMessage, fmt.Sprintf("unexpected outer record type %d after the handshake", h[0]))
	}
	if n := int(binary.BigEndian.Uint16(h[3:5])); n > MaxCiphertextBytes {
		return fatal(alertRecordOverflow, fmt.Sprintf("record of %d bytes over the limit", n))
	} else if n < tagBytes+1 {
		return fatal(alertDecodeError, "record shorter than its tag")
	}
	return nil
}

// openRecord decrypts one whole record (header included) in place.
func (c *Conn) openRecord(rec []byte, deliver func([]byte) error) error {
	nonce, err := c.in.nextNonce()
	if err != nil {
		return err
	}
	body := rec[HeaderBytes:]
	plain, err := c.in.aead.Open(body[:0], nonce, body, rec[:HeaderBytes])
	if err != nil {
		return fatal(alertBadRecordMAC, "record authentication failed")
	}
	// Strip the zero padding; the last non-zero byte is the inner type.
	i := len(plain) - 1
	for i >= 0 && plain[i] == 0 {
		i--
	}
	if i < 0 {
		return fatal(alertUnexpectedMessage, "record without a content type")
	}
	typ, plain := plain[i], plain[:i]
	if len(plain) > MaxPlaintextBytes {
		return fatal(alertRecordOverflow, "plaintext over 2^14 bytes")
	}
	if len(plain) == 0 || typ == typeAlert && len(plain) == 2 && plain[1] == alertUserCanceled {
		if c.useless++; c.useless > maxUselessRecords {
			return fatal(alertUnexpectedMessage, "too many records without data")
		}
	} else {
		c.useless = 0
	}
	switch typ {
	case typeApplicationData:
		if len(c.hs) > 0 {
			return fatal(alertUnexpectedMessage, "application data inside a handshake message")
		}
		if len(plain) == 0 {
			return nil
		}
		return deliver(plain)
	case typeAlert:
		if len(plain) != 2 {
			return fatal(alertDecodeError, "malformed alert")
		}
		switch plain[1] {
		case alertCloseNotify:
			c.closed = true
			return ErrCloseNotify
		case alertUserCanceled:
			return nil // a warning; the close_notify that follows ends it
		}
		return &Error{Alert: plain[1], Received: true}
	case typeHandshake:
		if len(plain) == 0 {
			return fatal(alertUnexpectedMessage, "empty handshake record")
		}
		return c.handshake(plain)
	}
	return fatal(alertUnexpectedMessage, fmt.Sprintf("unexpected inner record type %d", typ))
}

// handshake handles post-handshake messages (possibly split across
// records): KeyUpdate only.
func (c *Conn) handshake(b []byte) error {
	for len(b) > 0 {
		if len(c.hs) < 4 {
			take := min(4-len(c.hs), len(b))
			c.hs = append(c.hs, b[:take]...)
			b = b[take:]
			if len(c.hs) < 4 {
				return nil
			}
			if c.hs[0] != handshakeTypeKeyUpdate {
				return fatal(alertUnexpectedMessage, fmt.Sprintf("unexpected post-handshake message type %d", c.hs[0]))
			}
			if n := int(c.hs[1])<<16 | int(c.hs[2])<<8 | int(c.hs[3]); n != 1 {
				return fatal(alertDecodeError, "malformed KeyUpdate")
			}
		}
		take := min(5-len(c.hs), len(b))
		c.hs = append(c.hs, b[:take]...)
		b = b[take:]
		if len(c.hs) < 5 {
			return nil
		}
		req := c.hs[4]
		c.hs = c.hs[:0]
		switch req {
		case keyUpdateRequested:
			c.updatePending = true
		case keyUpdateNotRequested:
		default:
			return fatal(alertDecodeError, "malformed KeyUpdate")
		}
		// A KeyUpdate must end its record (RFC 8446 5.1: messages before
		// a key change align with the record boundary).
		if len(b) > 0 {
			return fatal(alertUnexpectedMessage, "data after KeyUpdate in its record")
		}
		if err := c.in.update(); err != nil {
			return err
		}
	}
	return nil
}

// PendingControl reports whether the Conn has a record of its own to send
// (a KeyUpdate the peer asked for): the caller should seal something
// (AppendControl) even with no application data waiting.
func (c *Conn) PendingControl() bool { return c.updatePending }

// RequestKeyUpdate makes the next sealed records start with a KeyUpdate
// that asks the peer to update its keys too.
func (c *Conn) RequestKeyUpdate() {
	c.updatePending = true
	c.requestPeer = true
}

// AppendControl appends the pending KeyUpdate record, if any, and moves
// the write side to the next secret. The sealing methods call it first.
func (c *Conn) AppendControl(dst []byte) ([]byte, error) {
	if !c.updatePending {
		return dst, nil
	}
	c.updatePending = false
	req := byte(keyUpdateNotRequested)
	if c.requestPeer {
		req = keyUpdateRequested
		c.requestPeer = false
	}
	dst, start := BeginRecord(dst)
	dst = append(dst, handshakeTypeKeyUpdate, 0, 0, 1, req)
	dst, err := c.finish(dst, start, typeHandshake)
	if err != nil {
		return dst, err
	}
	return dst, c.out.update()
}

// BeginRecord appends a record header to dst and returns dst and the
// offset where the record's plaintext starts: the caller appends at most
// MaxPlaintextBytes of application data (for instance reading a file
// straight into dst) and calls FinishRecord. dst needs
// SealOverheadBytes of spare capacity beyond the plaintext to seal without
// growing.
func BeginRecord(dst []byte) ([]byte, int) {
	dst = append(dst, typeApplicationData, 0x03, 0x03, 0, 0)
	return dst, len(dst)
}

// FinishRecord seals the application data appended since BeginRecord
// (start is its offset) in place. The caller sends AppendControl's
// records first (SealApplication does).
func (c *Conn) FinishRecord(dst []byte, start int) ([]byte, error) {
	return c.finish(dst, start, typeApplicationData)
}

func (c *Conn) finish(dst []byte, start int, typ byte) ([]byte, error) {
	n := len(dst) - start
	if n > MaxPlaintextBytes {
		return dst, fatal(alertInternalError, "sealing more than 2^14 bytes in one record")
	}
	dst = slices.Grow(append(dst, typ), tagBytes) // seal in place
	binary.BigEndian.PutUint16(dst[start-2:start], uint16(n+1+tagBytes))
	nonce, err := c.out.nextNonce()
	if err != nil {
		return dst, err
	}
	sealed := c.out.aead.Seal(dst[start:start], nonce, dst[start:], dst[start-HeaderBytes:start])
	return dst[:start+len(sealed)], nil
}

// SealApplication appends plaintext to dst as application data records
// of at most MaxPlaintextBytes each (after any pending control record).
func (c *Conn) SealApplication(dst, plaintext []byte) ([]byte, error) {
	dst, err := c.AppendControl(dst)
	if err != nil {
		return dst, err
	}
	for len(plaintext) > 0 {
		n := min(len(plaintext), MaxPlaintextBytes)
		var start int
		dst, start = BeginRecord(dst)
		dst = append(dst, plaintext[:n]...)
		if dst, err = c.FinishRecord(dst, start); err != nil {
			return dst, err
		}
		plaintext = plaintext[n:]
	}
	return dst, nil
}

// AppendAlert appends a fatal alert record (or close_notify, 0); the
// connection is to close after it.
func (c *Conn) AppendAlert(dst []byte, desc uint8) []byte {
	level := byte(2)
	if desc == alertCloseNotify || desc == alertUserCanceled {
		level = 1
	}
	dst, start := BeginRecord(dst)
	dst = append(dst, level, desc)
	out, err := c.finish(dst, start, typeAlert)
	if err != nil {
		return dst[:start-HeaderBytes]
	}
	return out
}

// AlertFor returns the alert to send for an error Open returned (0 for
// none: the peer's alert or its close_notify ends the stream).
func AlertFor(err error) (uint8, bool) {
	var e *Error
	if errors.As(err, &e) && !e.Received {
		return e.Alert, true
	}
	return 0, false
}
