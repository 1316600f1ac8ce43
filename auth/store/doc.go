// Package store keeps the broker's security state durably until it moves
// into the cluster metadata log: SCRAM credentials (Credentials, with a
// canonical encoding, EncodeCredentials/DecodeCredentials) and the bytes
// of the ACL set (auth/acl's Encode/Decode).
//
// Backend is the seam: a FileBackend writes each set whole, atomically
// (storage.WriteFileAtomic: temp file, fsync, rename, directory fsync),
// into the first log dir. When credentials and ACLs move into the
// metadata quorum, a backend that appends records replaces it; the
// in-memory sets and the handlers do not change.
//
// Concurrency: Credentials is read without locks (an atomic pointer to an
// immutable map; SCRAM lookups happen during authentication on the ring
// threads) and written by one writer at a time (AlterUserScramCredentials
// on the broker's admin worker), which persists the new set before
// publishing it, so what a client was told succeeded is durable.
package store
