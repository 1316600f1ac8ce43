package tuning

import (
	"errors"
	"syscall"
)

// checkKernelTLS reports whether kernel TLS (kTLS) is available. TLS
// listeners work without it (records are encrypted in user space); kTLS
// is what a future record layer needs to hand the keys to the kernel and
// splice fetch responses again. So the finding is informational: never a
// warning, whatever the kernel says.
func (e *env) checkKernelTLS() {
	const id = "net.ktls"
	why := "kernel TLS lets a TLS listener encrypt in the kernel after a handshake in Go, so fetch responses could be spliced from the page cache again; ringbroker's TLS listeners today encrypt in user space (crypto/tls) and do not need it"
	f := Finding{ID: id, Severity: OK, Found: "available (TCP_ULP tls accepted)", Recommended: "available, for a future kTLS record layer (not needed today)", Why: why}
	if err := e.sys.KernelTLS(); err != nil {
		f.Found = "unavailable: " + err.Error()
		if errors.Is(err, syscall.ENOENT) {
			f.Found = "unavailable: the kernel has no tls module (built without CONFIG_TLS, or the module cannot load): " + err.Error()
			f.Fix = "modprobe tls  # if the kernel was built with CONFIG_TLS=m"
		}
	}
	e.add(f)
}
