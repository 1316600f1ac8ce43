package tuning

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// ethtool commands (linux/ethtool.h) that read one offload flag through
// struct ethtool_value. Defined here so fixture tests build on every OS.
const (
	ethtoolGTXCSUM = 0x16
	ethtoolGSG     = 0x18
	ethtoolGTSO    = 0x1e
	ethtoolGGSO    = 0x23
	ethtoolGGRO    = 0x2b
)

// offload is one NIC offload the broker's throughput depends on.
type offload struct {
	id      string // finding ID
	cmd     uint32 // ethtool get command
	feature string // ethtool -K feature name
	why     string
}

var offloads = []offload{
	{"nic.tso", ethtoolGTSO, "tso", "TCP segmentation offload lets the kernel hand the NIC 64 KiB sends that it cuts into packets; without it fetch responses cost a segmentation pass per MTU on the CPU"},
	{"nic.gso", ethtoolGGSO, "gso", "generic segmentation offload segments large sends late, in the driver; without it the whole stack runs per packet for every fetch response"},
	{"nic.gro", ethtoolGGRO, "gro", "generic receive offload merges incoming packets of a produce request before the TCP stack, cutting per-packet receive cost several times"},
	{"nic.sg", ethtoolGSG, "sg", "scatter-gather lets the NIC send from page-cache pages directly; splice and sendfile of segment data fall back to copying without it, and TSO needs it"},
	{"nic.tx_csum", ethtoolGTXCSUM, "tx-checksumming", "transmit checksum offload: without it the CPU checksums every byte sent and TSO/scatter-gather are disabled too"},
}

// Network sysctl minimums: Redpanda's net tuner sets the two backlogs to
// 4096; 4 MiB buffers cover a 10 Gbit/s link at a few ms of RTT.
const (
	somaxconnMin       = 4096
	synBacklogMin      = 4096
	socketBufferMaxMin = 4 << 20
)

// checkNetwork grades the offloads of every interface a listener uses and
// the socket sysctls.
func (e *env) checkNetwork() {
	e.checkOffloads()
	e.checkNetSysctl("net.core.somaxconn", somaxconnMin,
		"caps each listener's accept backlog: when a burst of clients (a consumer group rebalancing, producers reconnecting after a restart) exceeds it, connection attempts are dropped and retried after a second")
	e.checkNetSysctl("net.ipv4.tcp_max_syn_backlog", synBacklogMin,
		"bounds half-open connections per listener; a reconnect storm beyond it falls back to SYN cookies or drops, delaying clients by retransmit timeouts")
	e.checkNetSysctl("net.core.rmem_max", socketBufferMaxMin,
		"caps SO_RCVBUF: the kernel silently clamps a larger socket.receive.buffer.bytes to it, limiting produce throughput per connection on links with real RTT")
	e.checkNetSysctl("net.core.wmem_max", socketBufferMaxMin,
		"caps SO_SNDBUF: the kernel silently clamps a larger socket.send.buffer.bytes to it, limiting fetch throughput per connection on links with real RTT")
}

func (e *env) checkNetSysctl(name string, minimum int64, why string) {
	v, err := e.sysctlInt(name)
	if err != nil {
		e.add(unreadable(name, "", err, why))
		return
	}
	rec := ">= " + strconv.FormatInt(minimum, 10)
	if minimum >= 1<<20 {
		rec += " (" + bytesText(uint64(minimum)) + ")"
	}
	f := Finding{ID: name, Severity: OK, Found: strconv.FormatInt(v, 10), Recommended: rec, Why: why}
	if v < minimum {
		f.Severity = Warning
		f.Fix = sysctlFix(name, strconv.FormatInt(minimum, 10))
	}
	e.add(f)
}

// checkOffloads maps listeners to interfaces and reads each offload flag.
func (e *env) checkOffloads() {
	if len(e.opts.ListenAddrs) == 0 {
		e.add(Finding{ID: "nic.listeners", Severity: OK, Found: "no listeners configured",
			Recommended: "listeners on interfaces with offloads on", Why: "nothing to check; pass the broker's listeners to check their interfaces"})
		return
	}
	ifs, err := e.sys.NetInterfaces()
	if err != nil {
		e.add(unreadable("nic.listeners", "", err, "without the interface list the listeners cannot be mapped to NICs"))
		return
	}
	byIface, findings := mapListeners(e.opts.ListenAddrs, ifs)
	for _, f := range findings {
		e.add(f)
	}
	names := make([]string, 0, len(byIface))
	for name := range byIface {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		listeners := strings.Join(byIface[name], ", ")
		for _, o := range offloads {
			f := Finding{ID: o.id, Subject: name, Recommended: "on", Why: o.why}
			v, err := e.sys.Ethtool(name, o.cmd)
			switch {
			case errors.Is(err, syscall.EOPNOTSUPP):
				f.Severity, f.Found = Warning, "not supported by the driver (listeners "+listeners+")"
			case err != nil:
				f.Severity, f.Found = Warning, "unknown: "+err.Error()
			case v == 0:
				f.Severity, f.Found = Warning, "off (listeners "+listeners+")"
				f.Fix = fmt.Sprintf("ethtool -K %s %s on", name, o.feature)
			default:
				f.Severity, f.Found = OK, "on (listeners "+listeners+")"
			}
			e.add(f)
		}
	}
}

// mapListeners returns, per interface name, the listeners it carries: an
// address's own interface; every loopback interface for 127.0.0.0/8, ::1
// and "localhost"; every up, non-loopback interface for an unspecified
// address. Addresses it cannot map produce a finding.
func mapListeners(addrs []string, ifs []NetInterface) (map[string][]string, []Finding) {
	out := map[string][]string{}
	var findings []Finding
	addTo := func(name, listener string) {
		for _, l := range out[name] {
			if l == listener {
				return
			}
		}
		out[name] = append(out[name], listener)
	}
	for _, listener := range addrs {
		host, _, err := net.SplitHostPort(listener)
		if err != nil {
			findings = append(findings, Finding{ID: "nic.listeners", Subject: listener, Severity: Warning,
				Found: "not host:port: " + err.Error(), Recommended: "host:port",
				Why: "the listener cannot be mapped to an interface, so its offloads are not checked"})
			continue
		}
		ip := net.ParseIP(host)
		switch {
		case host == "" || ip != nil && ip.IsUnspecified():
			matched := false
			for _, ifi := range ifs {
				if ifi.Up && !ifi.Loopback {
					addTo(ifi.Name, listener)
					matched = true
				}
			}
			if !matched {
				findings = append(findings, noInterface(listener, "no non-loopback interface is up"))
			}
		case host == "localhost" || ip != nil && ip.IsLoopback():
			matched := false
			for _, ifi := range ifs {
				if ifi.Loopback {
					addTo(ifi.Name, listener)
					matched = true
				}
			}
			if !matched {
				findings = append(findings, noInterface(listener, "no loopback interface"))
			}
		case ip == nil:
			findings = append(findings, Finding{ID: "nic.listeners", Subject: listener, Severity: Warning,
				Found: "host name " + host, Recommended: "an IP address",
				Why: "the checker does not resolve names (no DNS at startup), so this listener's interface offloads are not checked; listen on an IP to have them checked"})
		default:
			matched := false
			for _, ifi := range ifs {
				for _, a := range ifi.Addrs {
					if a.Equal(ip) {
						addTo(ifi.Name, listener)
						matched = true
					}
				}
			}
			if !matched {
				findings = append(findings, noInterface(listener, host+" is on no interface"))
			}
		}
	}
	return out, findings
}

func noInterface(listener, found string) Finding {
	return Finding{ID: "nic.listeners", Subject: listener, Severity: Warning, Found: found,
		Recommended: "an address of an interface that is up",
		Why:         "the broker cannot bind or will not be reachable on this address, and its offloads cannot be checked"}
}
