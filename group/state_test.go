package group

import "testing"

// TestValidTransitions pins the transition table to Kafka's
// GroupMetadata.validPreviousStates, edge by edge.
func TestValidTransitions(t *testing.T) {
	allowed := map[[2]State]bool{
		{PreparingRebalance, Empty}:               true,
		{Stable, PreparingRebalance}:              true,
		{CompletingRebalance, PreparingRebalance}: true,
		{Empty, PreparingRebalance}:               true,
		{PreparingRebalance, CompletingRebalance}: true,
		{CompletingRebalance, Stable}:             true,
	}
	for from := Empty; from <= Dead; from++ {
		allowed[[2]State{from, Dead}] = true
	}
	for from := Empty; from <= Dead; from++ {
		for to := Empty; to <= Dead; to++ {
			if got, want := validTransition(from, to), allowed[[2]State{from, to}]; got != want {
				t.Errorf("%v -> %v: allowed=%v, want %v", from, to, got, want)
			}
		}
	}
}
