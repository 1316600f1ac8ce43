//go:build linux

package ring

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// register calls io_uring_register(2), retrying EINTR (file table updates
// may wait for the ring to quiesce). It returns a bare unix.Errno or nil.
func (r *Ring) register(op uint32, arg unsafe.Pointer, nrArgs uint32) error {
	for {
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), uintptr(op), uintptr(arg), uintptr(nrArgs), 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
}

// RegisterFiles installs a registered file table; with SQEFixedFile an SQE's
// Fd is an index into it, which skips the per-request fd lookup. -1 entries
// are empty slots to fill later with UpdateFiles.
func (r *Ring) RegisterFiles(fds []int32) error {
	if len(fds) == 0 {
		return &Error{Op: "io_uring_register(FILES)", Errno: unix.EINVAL, Why: "empty file table"}
	}
	if err := r.register(registerFiles, unsafe.Pointer(&fds[0]), uint32(len(fds))); err != nil {
		return registerError("FILES", err.(unix.Errno))
	}
	return nil
}

// UnregisterFiles removes the registered file table.
func (r *Ring) UnregisterFiles() error {
	if err := r.register(unregisterFiles, nil, 0); err != nil {
		return registerError("UNREGISTER_FILES", err.(unix.Errno))
	}
	return nil
}

// UpdateFiles replaces registered file slots [offset, offset+len(fds)); -1
// clears a slot.
func (r *Ring) UpdateFiles(offset uint32, fds []int32) error {
	if len(fds) == 0 {
		return nil
	}
	up := filesUpdate{offset: offset, fds: uint64(uintptr(unsafe.Pointer(&fds[0])))}
	if err := r.register(registerFilesUpdate, unsafe.Pointer(&up), uint32(len(fds))); err != nil {
		return registerError("FILES_UPDATE", err.(unix.Errno))
	}
	return nil
}

// RegisterBuffers registers off-heap buffers for READ_FIXED/WRITE_FIXED
// (index = position in bufs). The kernel pins their pages, which counts
// against RLIMIT_MEMLOCK for unprivileged processes.
func (r *Ring) RegisterBuffers(bufs []Buffer) error {
	if len(bufs) == 0 {
		return &Error{Op: "io_uring_register(BUFFERS)", Errno: unix.EINVAL, Why: "no buffers"}
	}
	iov := make([]unix.Iovec, len(bufs))
	for i, b := range bufs {
		iov[i].Base = &b.mem[0]
		iov[i].SetLen(len(b.mem))
	}
	if err := r.register(registerBuffers, unsafe.Pointer(&iov[0]), uint32(len(iov))); err != nil {
		return registerError("BUFFERS", err.(unix.Errno))
	}
	return nil
}

// UnregisterBuffers removes all registered buffers.
func (r *Ring) UnregisterBuffers() error {
	if err := r.register(unregisterBuffers, nil, 0); err != nil {
		return registerError("UNREGISTER_BUFFERS", err.(unix.Errno))
	}
	return nil
}

// Probe is the kernel's answer to IORING_REGISTER_PROBE: which opcodes this
// kernel supports.
type Probe struct {
	lastOp    Op
	supported [256]bool
}

const probeOpSupported = 1 << 0

// Probe asks the kernel which opcodes it supports. Check the ones you use
// once at startup and fail or fall back with a message naming the missing
// opcode.
func (r *Ring) Probe() (*Probe, error) {
	// struct io_uring_probe: 16-byte header + 256 x io_uring_probe_op (8 B).
	buf := make([]byte, 16+256*8)
	if err := r.register(registerProbe, unsafe.Pointer(&buf[0]), 256); err != nil {
		return nil, registerError("PROBE", err.(unix.Errno))
	}
	p := &Probe{lastOp: Op(buf[0])}
	opsLen := int(buf[1])
	for i := 0; i < opsLen; i++ {
		e := buf[16+i*8 : 16+i*8+8]
		flags := uint16(e[2]) | uint16(e[3])<<8
		if bigEndian {
			flags = uint16(e[3]) | uint16(e[2])<<8
		}
		if flags&probeOpSupported != 0 {
			p.supported[e[0]] = true
		}
	}
	return p, nil
}

// Supported reports whether the kernel supports op.
func (p *Probe) Supported(op Op) bool { return p.supported[op] }

// LastOp returns the highest opcode this kernel knows.
func (p *Probe) LastOp() Op { return p.lastOp }

// Require returns an error wrapping ErrUnsupported naming the first op in
// ops that the kernel lacks, or nil.
func (p *Probe) Require(ops ...Op) error {
	for _, op := range ops {
		if !p.Supported(op) {
			return &Error{Op: "io_uring probe", Class: ErrUnsupported, Why: "opcode IORING_OP_" + op.String() + " not supported by this kernel"}
		}
	}
	return nil
}
