package main

// systemd readiness and watchdog (sd_notify protocol), written against
// sd_notify(3) and systemd.service(5) without libsystemd.
//
// The protocol: the service manager passes NOTIFY_SOCKET, the path of a
// AF_UNIX datagram socket ("@name" for the abstract namespace), and the
// service sends newline-separated VAR=VALUE assignments in one datagram:
//
//	READY=1       startup finished (we send it once every listener accepts)
//	STOPPING=1    shutdown began (SIGTERM drain)
//	WATCHDOG=1    keep-alive, at least every WatchdogSec (we send every half,
//	              and only while the daemon is live: watchdog.go)
//	STATUS=text   free-form status shown by systemctl status
//	EXTEND_TIMEOUT_USEC=n  more time for the stop in progress: sent while a
//	              long log close keeps closing logs (main.go, closeRegistry)
//
// With WatchdogSec set, systemd passes WATCHDOG_USEC (the interval) and
// WATCHDOG_PID (the pid that must send it). This file is self-contained: it
// depends on nothing else in package main; watchdog.go decides when to send
// the keep-alive.

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// sdNotify sends state (e.g. "READY=1", "STOPPING=1", "STATUS=draining") to
// the service manager. Without NOTIFY_SOCKET (not started by systemd, or
// Type= is not notify) it does nothing and returns nil.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
		// systemd ≥ 254 may also pass vsock: addresses (VMs); we do not run there.
		return fmt.Errorf("sd_notify: unsupported NOTIFY_SOCKET address %q", path)
	}
	// Go maps a leading '@' to the abstract namespace (a leading NUL byte).
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", path, err)
	}
	defer conn.Close()
	n, err := conn.Write([]byte(state))
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", path, err)
	}
	if n != len(state) {
		return fmt.Errorf("sd_notify %s: short write %d of %d bytes", path, n, len(state))
	}
	return nil
}

// watchdogInterval returns the watchdog interval systemd asked for
// (WatchdogSec=, passed as WATCHDOG_USEC), and false when there is none or
// when WATCHDOG_PID names another process (the variables were inherited).
func watchdogInterval() (time.Duration, bool) {
	usecText := os.Getenv("WATCHDOG_USEC")
	if usecText == "" {
		return 0, false
	}
	usec, err := strconv.ParseUint(usecText, 10, 63)
	if err != nil || usec == 0 {
		return 0, false
	}
	if pidText := os.Getenv("WATCHDOG_PID"); pidText != "" {
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid != os.Getpid() {
			return 0, false
		}
	}
	return time.Duration(usec) * time.Microsecond, true
}
