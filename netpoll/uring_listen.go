//go:build linux

package netpoll

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// listenSocket opens one SO_REUSEPORT listening socket on addr. Every loop
// opens its own socket on the same address, so the kernel spreads incoming
// connections across loops and a connection stays with the loop whose socket
// accepted it.
//
// The first socket of a listener (first) binds WITHOUT SO_REUSEPORT and sets
// it only after the bind, before listen: Linux refuses a bind without
// SO_REUSEPORT on a port any other socket holds (reuseport or not), so a
// port held by another process — a second ringbrokerd included — fails
// here with EADDRINUSE instead of joining that process's reuseport group
// and splitting its connections; the option set before listen still puts
// the socket in the group our other loops join. A port 0 listener resolves
// its port on this socket too, so there is no window between choosing the
// port and holding it. SO_REUSEADDR stays on: connections in TIME_WAIT from
// a previous run do not block a restart.
//
// Rejected: a separate probe socket bound without SO_REUSEPORT and closed
// before the loops bind. Between its close and the first loop's bind
// another process could take the port; and kept open, it would block our
// own reuseport binds.
func listenSocket(addr string, first bool) (int, *net.TCPAddr, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return -1, nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return -1, nil, fmt.Errorf("listener %q: bad port", addr)
	}
	ip := net.IPv4zero
	if host != "" {
		if ip = net.ParseIP(host); ip == nil {
			ips, err := net.LookupIP(host)
			if err != nil || len(ips) == 0 {
				return -1, nil, fmt.Errorf("listener %q: cannot resolve host", addr)
			}
			ip = ips[0]
		}
	}
	family := unix.AF_INET
	var sa unix.Sockaddr
	if ip4 := ip.To4(); ip4 != nil {
		sa4 := &unix.SockaddrInet4{Port: port}
		copy(sa4.Addr[:], ip4)
		sa = sa4
	} else {
		family = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Port: port}
		copy(sa6.Addr[:], ip.To16())
		sa = sa6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("listener %q: socket: %w", addr, err)
	}
	setOpt := func(opt int) error {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1); err != nil {
			unix.Close(fd)
			return fmt.Errorf("listener %q: setsockopt: %w", addr, err)
		}
		return nil
	}
	if err := setOpt(unix.SO_REUSEADDR); err != nil {
		return -1, nil, err
	}
	if !first {
		if err := setOpt(unix.SO_REUSEPORT); err != nil {
			return -1, nil, err
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, nil, bindError(addr, err)
	}
	if first {
		if err := setOpt(unix.SO_REUSEPORT); err != nil {
			return -1, nil, err
		}
	}
	if err := unix.Listen(fd, 4096); err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("listener %q: listen: %w", addr, err)
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	return fd, sockaddrToTCP(bound), nil
}

// bindError names the cause of the most common start failure plainly.
func bindError(addr string, err error) error {
	if errors.Is(err, unix.EADDRINUSE) {
		return fmt.Errorf("listener %q: port already in use by another process (another broker on this port?): %w", addr, err)
	}
	return fmt.Errorf("listener %q: bind: %w", addr, err)
}

func sockaddrToTCP(sa unix.Sockaddr) *net.TCPAddr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	}
	return &net.TCPAddr{}
}

// ptrOf returns the address of b's first byte (b non-empty).
func ptrOf(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }
