//go:build linux

package ring

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Buffer is an off-heap memory region (anonymous mmap, page aligned). The
// Go GC neither scans nor moves it, so its address may be handed to the
// kernel for as long as the Buffer is not freed.
type Buffer struct {
	mem []byte // len = requested size, cap = mapped size (page multiple)
}

// AllocBuffer maps n bytes of anonymous, page-aligned, zeroed memory.
func AllocBuffer(n int) (Buffer, error) {
	if n <= 0 {
		return Buffer{}, fmt.Errorf("ring: AllocBuffer(%d): size must be positive", n)
	}
	page := os.Getpagesize()
	size := (n + page - 1) &^ (page - 1)
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return Buffer{}, fmt.Errorf("ring: mmap %d bytes: %w", size, err)
	}
	return Buffer{mem: mem[:n]}, nil
}

// Bytes returns the region as a byte slice (len = the size asked for).
// The slice is invalid after Free.
func (b Buffer) Bytes() []byte { return b.mem }

// Ptr returns the region's start address for Prep* calls.
func (b Buffer) Ptr() unsafe.Pointer {
	if len(b.mem) == 0 {
		return nil
	}
	return unsafe.Pointer(&b.mem[0])
}

// Len returns the region's size in bytes.
func (b Buffer) Len() int { return len(b.mem) }

// Free unmaps the region. Nothing may use it afterwards, including the
// kernel: free only after every request using it has completed. Free of
// the zero Buffer is a no-op; Buffer is a value, so free each region once.
func (b Buffer) Free() error {
	if b.mem == nil {
		return nil
	}
	return unix.Munmap(b.mem[:cap(b.mem)])
}

// BufRing is a provided-buffer ring (IORING_REGISTER_PBUF_RING): a ring of
// buffer descriptors in off-heap memory from which the kernel picks a buffer
// for each SQEBufferSelect request (multishot recv) of its group, returning
// the buffer id in the CQE.
//
//	ring memory (entries x 16 B, page aligned, shared with the kernel)
//	+------------------+------------------+-----+
//	| addr len bid tail| addr len bid resv| ... |   tail = our producer index
//	+------------------+------------------+-----+   (overlays entry 0's resv)
//	         ^ kernel head (private to kernel)
//
// Ownership: a buffer id belongs to the kernel from the moment it is in the
// ring until a CQE names it; then it belongs to the caller until Recycle.
// Like the Ring, a BufRing is used only by the ring's owner goroutine.
type BufRing struct {
	r       *Ring
	group   uint16
	entries uint16
	mask    uint16
	bufSize int
	tail    uint16 // local producer index, published through tailWord

	ringMem []byte
	ring    []bufEntry
	bufs    Buffer
	// tailWord is the 32-bit word at offset 12 of entry 0: bid(0) in the
	// low half, the shared tail in the high half (little-endian). Go has
	// no 16-bit atomic store, so the tail is published with a 32-bit
	// store that rewrites entry 0's bid with its current value.
	tailWord *uint32

	// next[id] is the buffer Added right after id, so the buffers of a
	// bundled receive (RecvSendBundle: one CQE naming its first buffer,
	// filling the ring's following entries) can be named even after the
	// ring's slots were rewritten. A slot is rewritten once the kernel has
	// consumed it, possibly before its CQE is read; next[id] changes only
	// when the buffer after id is Added again, which needs id recycled
	// first. last is the buffer Added most recently.
	next []uint16
	last uint16
	// owned[id]: the caller owns id (a CQE named it, no Add since); Take
	// refuses an id the kernel still holds.
	owned []bool
}

// NewBufRing registers a provided-buffer ring of entries buffers of bufSize
// bytes each as buffer group group, and provides every buffer to the kernel
// at once. entries must be a power of two (max 32768).
func (r *Ring) NewBufRing(group uint16, entries uint16, bufSize int) (*BufRing, error) {
	if entries == 0 || entries&(entries-1) != 0 || entries > 32768 {
		return nil, fmt.Errorf("ring: NewBufRing: entries=%d must be a power of two <= 32768", entries)
	}
	if bufSize <= 0 {
		return nil, fmt.Errorf("ring: NewBufRing: bufSize=%d must be positive", bufSize)
	}
	if bigEndian {
		return nil, &Error{Op: "ring.NewBufRing", Class: ErrUnsupported, Why: "provided buffer rings need a little-endian host here"}
	}
	b := &BufRing{r: r, group: group, entries: entries, mask: entries - 1, bufSize: bufSize,
		next: make([]uint16, entries), owned: make([]bool, entries)}
	ringBytes := int(entries) * int(unsafe.Sizeof(bufEntry{}))
	rm, err := AllocBuffer(ringBytes)
	if err != nil {
		return nil, err
	}
	b.ringMem = rm.mem
	b.ring = unsafe.Slice((*bufEntry)(unsafe.Pointer(&b.ringMem[0])), entries)
	b.tailWord = (*uint32)(unsafe.Pointer(&b.ringMem[12]))
	b.bufs, err = AllocBuffer(int(entries) * bufSize)
	if err != nil {
		rm.Free()
		return nil, err
	}
	reg := bufReg{
		ringAddr:    uint64(uintptr(unsafe.Pointer(&b.ringMem[0]))),
		ringEntries: uint32(entries),
		bgid:        group,
	}
	if err := r.register(registerPbufRing, unsafe.Pointer(&reg), 1); err != nil {
		b.bufs.Free()
		rm.Free()
		return nil, registerError("PBUF_RING", err.(unix.Errno))
	}
	for id := uint16(0); id < entries; id++ {
		b.Add(id)
	}
	b.Publish()
	return b, nil
}

// Group returns the buffer group id for SQE.SetBufGroup / PrepRecvMultishot.
func (b *BufRing) Group() uint16 { return b.group }

// Entries returns the number of buffers.
func (b *BufRing) Entries() uint16 { return b.entries }

// BufSize returns the size of each buffer.
func (b *BufRing) BufSize() int { return b.bufSize }

// Buf returns buffer id in full (len = bufSize). Valid while the caller owns
// the id (between its CQE and Recycle) and until Close.
func (b *BufRing) Buf(id uint16) []byte {
	off := int(id) * b.bufSize
	return b.bufs.mem[off : off+b.bufSize : off+b.bufSize]
}

// Add puts buffer id back in the ring without publishing it; call Publish
// after a batch of Adds. The kernel does not see it before Publish.
func (b *BufRing) Add(id uint16) {
	e := &b.ring[b.tail&b.mask]
	e.addr = uint64(uintptr(unsafe.Pointer(&b.bufs.mem[int(id)*b.bufSize])))
	e.len = uint32(b.bufSize)
	e.bid = id
	b.tail++
	b.next[b.last] = id
	b.last = id
	b.owned[id] = false
}

// Take records that a CQE handed buffer id to the caller. It reports false
// for an id the caller owns already (named twice without an Add between):
// the caller and the kernel disagree about the ring, and the buffer's bytes
// must not be used.
func (b *BufRing) Take(id uint16) bool {
	if int(id) >= len(b.owned) || b.owned[id] {
		return false
	}
	b.owned[id] = true
	return true
}

// Next returns the buffer that followed id in the ring when the kernel
// consumed it: a bundled receive's CQE names its first buffer, and its
// further buffers are Next(first), Next(Next(first)), ... Valid for an id
// the caller owns (after Take, before Add).
func (b *BufRing) Next(id uint16) uint16 { return b.next[id] }

// Bufs returns how many buffers a receive of n bytes filled: the kernel
// fills a bundle's buffers in ring order, each to its end but the last.
func (b *BufRing) Bufs(n int) int { return (n + b.bufSize - 1) / b.bufSize }

// Publish makes every Add since the last Publish visible to the kernel.
func (b *BufRing) Publish() {
	// Release store of {bid0, tail}: entries written by Add are visible
	// before the kernel sees the new tail. bid0 is rewritten with the
	// value we last stored there ourselves; the kernel never writes
	// the ring.
	bid0 := uint32(b.ring[0].bid)
	atomic.StoreUint32(b.tailWord, uint32(b.tail)<<16|bid0)
}

// Recycle gives buffer id back to the kernel (Add + Publish). To return many
// buffers at once, Add each and Publish once.
func (b *BufRing) Recycle(id uint16) {
	b.Add(id)
	b.Publish()
}

// Close unregisters the group and unmaps its memory. No request using the
// group may be in flight (cancel multishot recvs first).
func (b *BufRing) Close() error {
	if b.ringMem == nil {
		return nil
	}
	var first error
	if !b.r.closed {
		reg := bufReg{bgid: b.group}
		if err := b.r.register(unregisterPbufRing, unsafe.Pointer(&reg), 1); err != nil {
			first = registerError("UNREGISTER_PBUF_RING", err.(unix.Errno))
		}
	}
	if err := b.bufs.Free(); err != nil && first == nil {
		first = err
	}
	if err := unix.Munmap(b.ringMem[:cap(b.ringMem)]); err != nil && first == nil {
		first = err
	}
	b.ringMem, b.ring, b.bufs = nil, nil, Buffer{}
	return first
}
