package proto

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// readOp is one read of a FuzzReader script, with what it returned.
type readOp struct {
	kind  byte
	num   int64
	span  []byte
	null  bool
	bound int
}

const readOpKinds = 9

// runScript reads in with the ops of script (each byte one op) and returns
// what each read returned; arrays are read with the bound ArrayLen applies
// when check is set, else as a raw length (the re-encoded input is shorter,
// so the bound may differ).
func runScript(t *testing.T, in []byte, flexible bool, script []byte, check bool) ([]readOp, *Reader) {
	r := NewReader(in, flexible)
	var ops []readOp
	for _, s := range script {
		wasOk, before := r.Ok(), r.Offset()
		op := readOp{kind: s % readOpKinds, bound: int(s/readOpKinds)%8 + 1}
		switch op.kind {
		case 0:
			op.num = int64(r.Int8())
		case 1:
			op.num = int64(r.Int16())
		case 2:
			op.num = int64(r.Int32())
		case 3:
			op.num = r.Int64()
		case 4:
			op.num = int64(r.Uvarint())
		case 5:
			op.span = r.String()
		case 6:
			op.span, op.null = r.NullableString()
		case 7:
			op.span = r.NullableBytes()
			op.null = op.span == nil
		case 8:
			if check {
				left := r.Len()
				op.num = int64(r.ArrayLen(op.bound))
				if r.Ok() && op.num*int64(op.bound) > int64(left) {
					t.Fatalf("ArrayLen(%d) = %d with %d bytes left", op.bound, op.num, left)
				}
			} else {
				op.num = int64(max(r.length(true), 0))
			}
		}
		if r.Offset()+r.Len() != len(in) || r.Offset() < before {
			t.Fatalf("op %d: offset %d + len %d != %d (before %d)", op.kind, r.Offset(), r.Len(), len(in), before)
		}
		if !r.Ok() {
			if op.num != 0 || op.span != nil {
				t.Fatalf("op %d: failed read returned %d %q", op.kind, op.num, op.span)
			}
			return ops, &r
		}
		if !wasOk {
			t.Fatal("reader recovered from a failure")
		}
		if len(op.span) > 0 {
			at := r.Offset() - len(op.span)
			if !bytes.Equal(in[at:r.Offset()], op.span) || &in[at] != &op.span[0] {
				t.Fatalf("op %d: span is not the input's bytes before the offset", op.kind)
			}
		}
		ops = append(ops, op)
	}
	return ops, &r
}

// encodeOps writes the values of ops back with a Writer.
func encodeOps(ops []readOp, flexible bool) []byte {
	w := Writer{Flexible: flexible}
	for _, op := range ops {
		switch op.kind {
		case 0:
			w.Int8(int8(op.num))
		case 1:
			w.Int16(int16(op.num))
		case 2:
			w.Int32(int32(op.num))
		case 3:
			w.Int64(op.num)
		case 4:
			w.Uvarint(uint32(op.num))
		case 5:
			w.String(string(op.span))
		case 6:
			if op.null {
				w.NullableString("")
			} else {
				w.String(string(op.span))
			}
		case 7:
			if op.null {
				w.BytesLen(-1)
			} else {
				w.BytesLen(int64(len(op.span)))
				w.B = append(w.B, op.span...)
			}
		case 8:
			w.ArrayLen(int(op.num))
		}
	}
	return w.B
}

// FuzzReader runs a script of reads over arbitrary input. Invariants: it
// never panics; the offset only grows and offset + remaining is the input
// length; a failed read returns zero values and the reader stays failed;
// spans are the input's own bytes; an array count fits the remaining bytes
// at its minimum element size; and what was read, written back with
// Writer, reads back the same and is no longer than what was consumed
// (Writer's encodings are the minimal ones).
func FuzzReader(f *testing.F) {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 1, Records: []byte("abc")}}}}
	f.Add(req.AppendTo(nil), true, []byte{6, 1, 2, 8, 5, 8, 2, 7})
	req.Version = 8
	f.Add(req.AppendTo(nil), false, []byte{6, 1, 2, 8, 5, 8, 2, 7})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1, 'x'}, true, []byte{4, 5, 8})
	f.Add([]byte{0, 0, 0, 9, 0, 0}, false, []byte{8 + 4*readOpKinds, 1})
	f.Fuzz(func(t *testing.T, in []byte, flexible bool, script []byte) {
		ops, r := runScript(t, in, flexible, script, true)
		consumed := r.Offset()
		out := encodeOps(ops, flexible)
		if len(out) > consumed {
			t.Fatalf("re-encoded %d bytes from %d consumed", len(out), consumed)
		}
		again, r2 := runScript(t, out, flexible, script[:len(ops)], false)
		if !r2.Complete() || len(again) != len(ops) {
			t.Fatalf("re-encoding does not read back: ok %v, %d of %d ops", r2.Ok(), len(again), len(ops))
		}
		for i := range ops {
			a, b := ops[i], again[i]
			if a.num != b.num || a.null != b.null || !bytes.Equal(a.span, b.span) {
				t.Fatalf("op %d (kind %d): read %+v, re-read %+v", i, a.kind, a, b)
			}
		}
	})
}

// What the Writer writes, the Reader reads back, null and empty apart.
func TestWriterReaderRoundTrip(t *testing.T) {
	for _, flexible := range []bool{false, true} {
		w := Writer{Flexible: flexible}
		w.String("topic")
		w.NullableString("")
		w.NullableString("m")
		w.ArrayLen(2)
		w.ArrayLen(-1)
		w.BytesLen(-1)
		w.Tags()
		r := NewReader(w.B, flexible)
		if s := r.String(); string(s) != "topic" {
			t.Fatalf("flexible %v: string %q", flexible, s)
		}
		if s, null := r.NullableString(); !null || s != nil {
			t.Fatalf("flexible %v: null string read as %q", flexible, s)
		}
		if s, null := r.NullableString(); null || string(s) != "m" {
			t.Fatalf("flexible %v: string %q null %v", flexible, s, null)
		}
		if n := r.length(true); n != 2 {
			t.Fatalf("flexible %v: array %d", flexible, n)
		}
		if n := r.ArrayLen(1); n != 0 || !r.Ok() {
			t.Fatalf("flexible %v: null array %d", flexible, n)
		}
		if b := r.NullableBytes(); b != nil {
			t.Fatalf("flexible %v: null bytes %q", flexible, b)
		}
		r.SkipTags()
		if !r.Complete() {
			t.Fatalf("flexible %v: %d bytes left, ok %v", flexible, r.Len(), r.Ok())
		}
	}
}
