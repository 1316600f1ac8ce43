//go:build linux

package ring

import (
	"testing"
)

// BenchmarkNop measures one batch of 32 NOPs: prepare, submit, wait, and
// drain. One op = one batch; ns/nop is reported too. Must be 0 allocs/op.
func BenchmarkNop(b *testing.B) {
	const batch = 32
	r := newTestRing(b, Params{Entries: 64, SingleIssuer: true, DeferTaskrun: true, CoopTaskrun: true})
	var cqes [batch]CQE
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < batch; j++ {
			s := r.GetSQE()
			s.PrepNop()
			s.SetUserData(uint64(j))
		}
		if _, err := r.SubmitAndWait(batch); err != nil {
			b.Fatal(err)
		}
		got := 0
		for got < batch {
			got += r.PeekBatch(cqes[got:])
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/nop")
}

// BenchmarkSendRecv is one 64-byte send + recv round on a socketpair
// through the ring.
func BenchmarkSendRecv(b *testing.B) {
	r := newTestRing(b, Params{Entries: 64, SingleIssuer: true, DeferTaskrun: true, CoopTaskrun: true})
	x, y := socketpair(b)
	out := allocBuf(b, 64)
	in := allocBuf(b, 64)
	var cqes [2]CQE
	b.ReportAllocs()
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := r.GetSQE()
		s.PrepSend(x, out.Ptr(), 64, 0)
		s = r.GetSQE()
		s.PrepRecv(y, in.Ptr(), 64, 0)
		if _, err := r.SubmitAndWait(2); err != nil {
			b.Fatal(err)
		}
		got := 0
		for got < 2 {
			got += r.PeekBatch(cqes[got:])
		}
	}
}
