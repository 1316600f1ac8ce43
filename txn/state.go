package txn

// State is a transaction's state. The numeric values are Kafka's
// TransactionState ids, the TransactionStatus byte of a
// __transaction_state value.
type State int8

// Transaction states, as Kafka names and numbers them.
const (
	Empty State = iota
	Ongoing
	PrepareCommit
	PrepareAbort
	CompleteCommit
	CompleteAbort
	Dead
	PrepareEpochFence
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit",
	"CompleteAbort", "Dead", "PrepareEpochFence"}

// String returns Kafka's name of the state (DescribeTransactions).
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

// valid reports whether s is one of Kafka's eight state ids.
func (s State) valid() bool { return s >= Empty && s <= PrepareEpochFence }

// expirationAllowed is Kafka's TransactionState.isExpirationAllowed: only an
// id with no transaction in progress may expire.
func (s State) expirationAllowed() bool {
	return s == Empty || s == CompleteCommit || s == CompleteAbort
}

// isPrepare reports PrepareCommit or PrepareAbort.
func (s State) isPrepare() bool { return s == PrepareCommit || s == PrepareAbort }

// isComplete reports CompleteCommit or CompleteAbort.
func (s State) isComplete() bool { return s == CompleteCommit || s == CompleteAbort }

// validPreviousStates is Kafka's transition table
// (TransactionState.VALID_PREVIOUS_STATES, Kafka 4): the states each state
// may be entered from. PrepareAbort from Empty and Complete* is
// transactions v2's abort when the client is unsure whether a transaction
// is open. Loading sets a state directly; it is not a transition.
//
// PrepareEpochFence is only ever a pending state here, for one call: the
// fence is turned into PrepareAbort before the call returns (Kafka does the
// same from endTransaction), so no id rests in it and it is never written.
var validPreviousStates = [...][]State{
	Empty:             {Empty, CompleteCommit, CompleteAbort},
	Ongoing:           {Ongoing, Empty, CompleteCommit, CompleteAbort},
	PrepareCommit:     {Ongoing},
	PrepareAbort:      {Ongoing, PrepareEpochFence, Empty, CompleteCommit, CompleteAbort},
	CompleteCommit:    {PrepareCommit},
	CompleteAbort:     {PrepareAbort},
	Dead:              {Empty, CompleteAbort, CompleteCommit},
	PrepareEpochFence: {Ongoing},
}

// validTransition reports whether Kafka allows from -> to.
func validTransition(from, to State) bool {
	if !to.valid() {
		return false
	}
	for _, p := range validPreviousStates[to] {
		if p == from {
			return true
		}
	}
	return false
}
