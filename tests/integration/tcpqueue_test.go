//go:build linux

package integration

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tcpQueues returns the kernel send and receive queue lengths (bytes) of the IPv4 TCP
// socket with the given local and remote address, from /proc/net/tcp. Both ends of a
// loopback connection live in this network namespace, so this sees the broker's side
// of a connection too: it tells where unread bytes sit (client send queue, broker
// receive queue, broker send queue, client receive queue).
func tcpQueues(local, remote *net.TCPAddr) (sendQ, recvQ int64, err error) {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, 0, err
	}
	want := procAddr(local) + " " + procAddr(remote)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		// sl local_address rem_address st tx_queue:rx_queue ...
		if len(f) < 5 || f[1]+" "+f[2] != want {
			continue
		}
		tx, rx, ok := strings.Cut(f[4], ":")
		if !ok {
			return 0, 0, fmt.Errorf("bad queue field %q", f[4])
		}
		if sendQ, err = strconv.ParseInt(tx, 16, 64); err != nil {
			return 0, 0, err
		}
		if recvQ, err = strconv.ParseInt(rx, 16, 64); err != nil {
			return 0, 0, err
		}
		return sendQ, recvQ, nil
	}
	return 0, 0, fmt.Errorf("no socket %s in /proc/net/tcp", want)
}

// procAddr formats an IPv4 address as /proc/net/tcp does: the address as a
// host-endian (little-endian here) hex u32, then the port in hex.
func procAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	var le [4]byte
	binary.LittleEndian.PutUint32(le[:], binary.BigEndian.Uint32(ip))
	return strings.ToUpper(hex.EncodeToString(le[:])) + ":" + fmt.Sprintf("%04X", a.Port)
}

// waitServerSideClosed polls /proc/net/tcp until no connection to the
// broker's port is open on the broker's side (ESTABLISHED, or CLOSE_WAIT: the
// client closed, the broker has not yet), so connection limits count nothing
// left over. bound is a fail-safe, not a speed requirement.
func waitServerSideClosed(t *testing.T, port int, bound time.Duration) {
	t.Helper()
	suffix := fmt.Sprintf(":%04X", port)
	deadline := time.Now().Add(bound)
	for {
		data, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatal(err)
		}
		open := 0
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st ...; 01 ESTABLISHED, 08 CLOSE_WAIT
			if len(f) >= 4 && strings.HasSuffix(f[1], suffix) && (f[3] == "01" || f[3] == "08") {
				open++
			}
		}
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to port %d still open on the broker's side after %v", open, port, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
