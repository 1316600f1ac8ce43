// Package txn is the transaction coordinator (Kafka's TransactionCoordinator,
// TransactionStateManager and TransactionMetadata) as an I/O-free state
// machine with injected time.
package txn
