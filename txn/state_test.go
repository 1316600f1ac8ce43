package txn

import "testing"

// TestValidTransitions pins the transition table to Kafka's
// TransactionState.VALID_PREVIOUS_STATES (Kafka 4), edge by edge.
func TestValidTransitions(t *testing.T) {
	allowed := map[[2]State]bool{
		{Empty, Empty}: true, {CompleteCommit, Empty}: true, {CompleteAbort, Empty}: true,
		{Ongoing, Ongoing}: true, {Empty, Ongoing}: true, {CompleteCommit, Ongoing}: true, {CompleteAbort, Ongoing}: true,
		{Ongoing, PrepareCommit}: true,
		{Ongoing, PrepareAbort}:  true, {PrepareEpochFence, PrepareAbort}: true,
		{Empty, PrepareAbort}: true, {CompleteCommit, PrepareAbort}: true, {CompleteAbort, PrepareAbort}: true,
		{PrepareCommit, CompleteCommit}: true,
		{PrepareAbort, CompleteAbort}:   true,
		{Empty, Dead}:                   true, {CompleteAbort, Dead}: true, {CompleteCommit, Dead}: true,
		{Ongoing, PrepareEpochFence}: true,
	}
	for from := Empty; from <= PrepareEpochFence; from++ {
		for to := Empty; to <= PrepareEpochFence; to++ {
			if got, want := validTransition(from, to), allowed[[2]State{from, to}]; got != want {
				t.Errorf("%v -> %v: allowed=%v, want %v", from, to, got, want)
			}
		}
	}
	if validTransition(Empty, PrepareEpochFence+1) {
		t.Error("a state id beyond Kafka's eight is allowed")
	}
}

// TestStateNames pins Kafka's names (DescribeTransactions, ListTransactions).
func TestStateNames(t *testing.T) {
	want := []string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}
	for i, w := range want {
		if got := State(i).String(); got != w {
			t.Errorf("state %d: %q, want %q", i, got, w)
		}
	}
}

// TestFencedForVersion pins KafkaApis' mapping of PRODUCER_FENCED for old
// request versions.
func TestFencedForVersion(t *testing.T) {
	for _, c := range []struct {
		api     API
		version int16
		want    string
	}{
		{APIInitProducerID, 3, "INVALID_PRODUCER_EPOCH"}, {APIInitProducerID, 4, "PRODUCER_FENCED"},
		{APIAddPartitions, 1, "INVALID_PRODUCER_EPOCH"}, {APIAddPartitions, 2, "PRODUCER_FENCED"},
		{APIAddOffsets, 1, "INVALID_PRODUCER_EPOCH"}, {APIAddOffsets, 2, "PRODUCER_FENCED"},
		{APIEndTxn, 1, "INVALID_PRODUCER_EPOCH"}, {APIEndTxn, 2, "PRODUCER_FENCED"},
	} {
		if got := codeName(FencedForVersion(c.api, c.version, 90)); got != c.want {
			t.Errorf("%v v%d: %s, want %s", c.api, c.version, got, c.want)
		}
	}
	if got := FencedForVersion(APIEndTxn, 0, 51); got != 51 {
		t.Errorf("other codes pass through: %d", got)
	}
}
