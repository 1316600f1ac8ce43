//go:build linux

package netpoll

import (
	"sync"

	"golang.org/x/sys/unix"
)

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

// Served spanning-frame mappings up to mapCacheMaxBytes go back to a small
// process-wide cache instead of munmap, and the next frame that needs more
// than partialReuseMaxBytes takes one whole: Produce requests over 64 KiB
// (a client batching several partitions) otherwise paid, per request, a
// heap buffer doubled up to 64 KiB, a fresh mapping whose every page
// faulted in zeroed, and a munmap (a fifth of the broker's CPU in an
// 8-partition produce profile, docs/BENCHMARKS.md). The cache is bounded
// (mapCacheEntries × mapCacheMaxBytes for the process); its mappings are
// counted against the request memory bound while a frame uses them, as any
// partial buffer is.
const (
	mapCacheMaxBytes = 1 << 20
	mapCacheEntries  = 8
)

var mapCache struct {
	mu   sync.Mutex
	free [][]byte
}

// cachedMapping takes a cached mapping of at least n bytes (the smallest
// that fits), with length 0; nil when none fits.
func cachedMapping(n int) []byte {
	if n > mapCacheMaxBytes {
		return nil
	}
	mapCache.mu.Lock()
	defer mapCache.mu.Unlock()
	best := -1
	for i, p := range mapCache.free {
		if cap(p) >= n && (best < 0 || cap(p) < cap(mapCache.free[best])) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	p := mapCache.free[best]
	last := len(mapCache.free) - 1
	mapCache.free[best], mapCache.free[last] = mapCache.free[last], nil
	mapCache.free = mapCache.free[:last]
	return p[:0]
}

// releaseMapping gives back a mapping nobody uses any more (its frame was
// served, or dropped): into the cache when it is small enough and there is
// room or a smaller entry to replace, unmapped otherwise.
func releaseMapping(p []byte) {
	if cap(p) <= mapCacheMaxBytes {
		mapCache.mu.Lock()
		if len(mapCache.free) < mapCacheEntries {
			mapCache.free = append(mapCache.free, p[:0])
			mapCache.mu.Unlock()
			return
		}
		small := 0
		for i, q := range mapCache.free {
			if cap(q) < cap(mapCache.free[small]) {
				small = i
			}
		}
		if cap(mapCache.free[small]) < cap(p) {
			p, mapCache.free[small] = mapCache.free[small], p[:0]
		}
		mapCache.mu.Unlock()
	}
	unmapPartial(p)
}
