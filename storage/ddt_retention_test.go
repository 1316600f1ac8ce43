package storage

import (
	"fmt"

	"github.com/cockroachdb/datadriven"
)

// retention: EnforceRetention at the clock's time; prints how many segments
// went and the state.
func (r *ddRunner) handleRetention() string {
	n, err := r.l.EnforceRetention(r.clock.Now())
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("deleted %d segments\n%s", n, r.state())
}

// delete-records offset=N: DeleteRecords; prints the new log start offset
// and the state.
func (r *ddRunner) handleDeleteRecords(d *datadriven.TestData) string {
	lso, err := r.l.DeleteRecords(r.intArg(d, "offset", -1))
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("log-start=%d\n%s", lso, r.state())
}
