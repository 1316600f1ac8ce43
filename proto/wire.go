package proto

// Primitive readers and writers for the hand-written (flyweight) codecs of
// the hot paths: the Produce request and response, and the Fetch response
// (fetch.go). Every other request and response is a generated kmsg type.
//
// Both wrap franz-go's kbin, the primitives kmsg itself is built on, and add
// the one thing kbin leaves to its generated callers: the choice between the
// classic and the flexible (KIP-482: compact lengths, tagged fields)
// encoding of the same field, made once per message from its version.
//
//	field            classic               flexible
//	string           int16 len + bytes     uvarint(len+1) + bytes
//	nullable string  int16 len (-1 null)   uvarint(len+1) (0 null)
//	nullable bytes   int32 len (-1 null)   uvarint(len+1) (0 null)
//	array            int32 count (-1 null) uvarint(count+1) (0 null)
//	tagged fields    (absent)              uvarint count + (uvarint tag, uvarint size, bytes)...

import "github.com/twmb/franz-go/pkg/kbin"

// Reader reads a message body without allocating: strings and bytes come
// back as spans of the input. Like kbin.Reader, which it wraps, it
// remembers its first error: once a read fails (short input, a negative
// length where none may be, a count the remaining bytes cannot hold) every
// later read returns zero values and Ok reports false.
type Reader struct {
	r kbin.Reader
	// Flexible selects the compact encodings and tagged fields.
	Flexible bool
	// size is the length of the whole input, for Offset.
	size int
}

// NewReader returns a Reader over b.
func NewReader(b []byte, flexible bool) Reader {
	return Reader{r: kbin.Reader{Src: b}, Flexible: flexible, size: len(b)}
}

// Ok reports whether every read so far succeeded.
func (r *Reader) Ok() bool { return r.r.Ok() }

// Fail marks the input malformed.
func (r *Reader) Fail() { r.r.Span(-1) } // kbin's only way in: a negative span

// Len is the number of unread bytes.
func (r *Reader) Len() int { return len(r.r.Src) }

// Offset is the position of the next read in the input.
func (r *Reader) Offset() int { return r.size - len(r.r.Src) }

// Int8 reads an int8.
func (r *Reader) Int8() int8 { return r.r.Int8() }

// Int16 reads an int16.
func (r *Reader) Int16() int16 { return r.r.Int16() }

// Int32 reads an int32.
func (r *Reader) Int32() int32 { return r.r.Int32() }

// Int64 reads an int64.
func (r *Reader) Int64() int64 { return r.r.Int64() }

// Uvarint reads an unsigned varint of at most 32 bits.
func (r *Reader) Uvarint() uint32 { return r.r.Uvarint() }

// Span returns the next n bytes; a negative n or one past the end fails.
func (r *Reader) Span(n int) []byte { return r.r.Span(n) }

// length reads a classic length (int16 or int32, as wide says) or a
// compact one; -1 is null.
func (r *Reader) length(wide bool) int {
	if r.Flexible {
		return int(r.r.Uvarint()) - 1
	}
	if wide {
		return int(r.r.Int32())
	}
	return int(r.r.Int16())
}

// String returns a non-nullable string's bytes; a null fails.
func (r *Reader) String() []byte {
	n := r.length(false)
	if n < 0 {
		r.Fail()
		return nil
	}
	return r.r.Span(n)
}

// NullableString returns a nullable string's bytes, and whether it was
// null (a nil span then).
func (r *Reader) NullableString() (s []byte, null bool) {
	n := r.length(false)
	if n < 0 {
		return nil, r.Ok()
	}
	return r.r.Span(n), false
}

// NullableBytes returns a nullable bytes field: nil when null, a non-nil
// (possibly empty) span otherwise.
func (r *Reader) NullableBytes() []byte {
	n := r.length(true)
	if n < 0 {
		return nil
	}
	return r.r.Span(n)
}

// ArrayLen reads an array count, a null array counting as empty, for an
// array whose elements take at least minElem bytes each (at least 1): a
// count the remaining input cannot hold is malformed. Without the bound a
// body of zeros claiming one element per byte makes a decoder allocate
// tens of bytes per byte received before it fails.
func (r *Reader) ArrayLen(minElem int) int { return max(r.NullableArrayLen(minElem), 0) }

// NullableArrayLen is ArrayLen that tells a null array (-1) from an empty
// one.
func (r *Reader) NullableArrayLen(minElem int) int {
	n := r.length(true)
	if n < 0 || !r.Ok() {
		return min(n, 0)
	}
	if n > len(r.r.Src)/max(minElem, 1) {
		r.Fail()
		return 0
	}
	return n
}

// SkipTags skips a tagged-field section (nothing when not flexible).
func (r *Reader) SkipTags() {
	if !r.Flexible {
		return
	}
	for n := r.r.Uvarint(); n > 0 && r.Ok(); n-- {
		r.r.Uvarint() // tag
		r.r.Span(int(r.r.Uvarint()))
	}
}

// Complete reports whether the input was read exactly: every read
// succeeded and nothing is left over.
func (r *Reader) Complete() bool { return r.Ok() && len(r.r.Src) == 0 }

// Writer appends a message body to B in the classic or the flexible
// encoding.
type Writer struct {
	B []byte
	// Flexible selects the compact encodings and tagged fields.
	Flexible bool
}

// Int8 appends an int8.
func (w *Writer) Int8(v int8) { w.B = kbin.AppendInt8(w.B, v) }

// Int16 appends an int16.
func (w *Writer) Int16(v int16) { w.B = kbin.AppendInt16(w.B, v) }

// Int32 appends an int32.
func (w *Writer) Int32(v int32) { w.B = kbin.AppendInt32(w.B, v) }

// Int64 appends an int64.
func (w *Writer) Int64(v int64) { w.B = kbin.AppendInt64(w.B, v) }

// UUID appends a 16-byte uuid.
func (w *Writer) UUID(v [16]byte) { w.B = kbin.AppendUuid(w.B, v) }

// ArrayLen appends an array count; n < 0 is a null array.
func (w *Writer) ArrayLen(n int) {
	if w.Flexible {
		w.B = kbin.AppendCompactArrayLen(w.B, n) // n+1: 0 for null
		return
	}
	w.B = kbin.AppendArrayLen(w.B, n)
}

// BytesLen appends the length of a nullable bytes field whose n bytes the
// caller appends (or splices) next; n < 0 is null.
func (w *Writer) BytesLen(n int64) {
	if w.Flexible {
		w.B = kbin.AppendUvarint(w.B, uint32(n+1))
		return
	}
	w.B = kbin.AppendInt32(w.B, int32(n))
}

// String appends a non-nullable string.
func (w *Writer) String(s string) {
	if w.Flexible {
		w.B = kbin.AppendCompactString(w.B, s)
		return
	}
	w.B = kbin.AppendString(w.B, s)
}

// NullableString appends a nullable string, "" as null.
func (w *Writer) NullableString(s string) {
	switch {
	case s != "":
		w.String(s)
	case w.Flexible:
		w.B = kbin.AppendCompactNullableString(w.B, nil)
	default:
		w.B = kbin.AppendNullableString(w.B, nil)
	}
}

// Tags appends an empty tagged-field section (nothing when not flexible).
func (w *Writer) Tags() {
	if w.Flexible {
		w.B = append(w.B, 0)
	}
}

// Uvarint appends an unsigned varint.
func (w *Writer) Uvarint(v uint32) { w.B = kbin.AppendUvarint(w.B, v) }
