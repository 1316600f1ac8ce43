//go:build linux

package netpoll

import "golang.org/x/sys/unix"

// Large spanning-frame buffers live off the Go heap: mmap'd, grown with
// mremap (no copy, no smaller copy left behind) and unmapped as soon as the
// frame's ServeFrame returns. On the heap, every completed large frame
// stayed in the RSS until a collection, and GOGC's headroom doubled what the
// bound allowed (16 connections with 40 MiB frames: ~300 MiB against a
// 32 MiB bound plus one frame). ServeFrame's contract already says the frame
// is valid only until it returns.

// mapPartial returns a mapping of n bytes holding a copy of old (len(old)
// bytes), growing old in place when it is itself a mapping.
func mapPartial(old []byte, oldMapped bool, n int) ([]byte, error) {
	if oldMapped {
		p, err := unix.Mremap(old[:cap(old)], n, unix.MREMAP_MAYMOVE)
		if err != nil {
			return nil, err
		}
		return p[:len(old)], nil
	}
	p, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, err
	}
	return p[:copy(p, old)], nil
}

func unmapPartial(p []byte) { _ = unix.Munmap(p[:cap(p)]) }
