//go:build linux

package netpoll

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestListenersArePlainTCP: the listeners netpoll binds with Go's net
// package (the portable backend's, and the TLS listeners beside the rings)
// are plain TCP sockets, as the io_uring listeners are, not Go's default
// Multipath TCP: sockets accepted from an MPTCP listener cannot send
// zero-copy (IORING_OP_SEND_ZC fails with EOPNOTSUPP).
func TestListenersArePlainTCP(t *testing.T) {
	lns, err := bindListeners([]string{"127.0.0.1:0", "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range lns {
		defer ln.Close()
		rc, err := ln.(*net.TCPListener).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var proto int
		var serr error
		if err := rc.Control(func(fd uintptr) {
			proto, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL)
		}); err != nil || serr != nil {
			t.Fatal(err, serr)
		}
		if proto != unix.IPPROTO_TCP {
			t.Fatalf("listener %v: socket protocol %d, want IPPROTO_TCP (%d)", ln.Addr(), proto, unix.IPPROTO_TCP)
		}
	}
}
