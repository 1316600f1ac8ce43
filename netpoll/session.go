package netpoll

import (
	"crypto/tls"
	"net"
)

// Session is a handler's state for one connection (for the broker: the
// listener's security protocol, the SASL exchange, the authenticated
// principal). netpoll creates it at accept through Options.Sessions, hands
// it to every Request of the connection (Request.Session) and calls Done
// once, after the last ServeFrame of the connection, on the goroutine that
// ran ServeFrame (the loop thread on io_uring, the connection's reader
// goroutine on the portable backend). A Request answered later from
// another goroutine keeps its Session: the value stays valid (it is
// never reused for another connection), so a handler may read what it
// wrote into it before handing the request off.
type Session interface {
	Done()
}

// SessionOpener creates the Session of a new connection. listener is the
// index in Options.Listeners of the listener that accepted it, remote the
// client's address (nil if unknown). It runs on the accepting goroutine
// (a loop thread on io_uring) and must not block.
type SessionOpener interface {
	OpenSession(listener int, remote net.Addr) Session
}

// openSession returns the new connection's session, or nil without a
// SessionOpener.
func (b *serverBase) openSession(listener int, remote net.Addr) Session {
	if b.opts.Sessions == nil {
		return nil
	}
	return b.opts.Sessions.OpenSession(b.listenerID(listener), remote)
}

// openTLSSession is openSession for a connection whose TLS handshake
// completed: the opener's OpenTLSSession when it has one.
func (b *serverBase) openTLSSession(listener int, remote net.Addr, state *tls.ConnectionState) Session {
	if b.opts.Sessions == nil {
		return nil
	}
	if o, ok := b.opts.Sessions.(TLSSessionOpener); ok {
		return o.OpenTLSSession(b.listenerID(listener), remote, state)
	}
	return b.opts.Sessions.OpenSession(b.listenerID(listener), remote)
}

// listenerID is the Server-wide index of this backend's listener i.
func (b *serverBase) listenerID(i int) int {
	if b.opts.listenerIDs == nil {
		return i
	}
	return b.opts.listenerIDs[i]
}

// sessionDone ends s (nil-safe).
func sessionDone(s Session) {
	if s != nil {
		s.Done()
	}
}
