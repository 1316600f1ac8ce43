// Package quota holds Kafka's client quotas: the quota configs
// (entities user, client-id, (user, client-id) and ip, with <default>
// names; keys producer_byte_rate, consumer_byte_rate, request_percentage,
// controller_mutation_rate and connection_creation_rate), their
// validation, DescribeClientQuotas' filters and a canonical encoding for
// the local store (Set), and the enforcement state (Manager): a sampled
// rate per quota entity and the throttle time a client owes once it went
// past its quota.
//
// The package is free of I/O and of the wall clock: every call that
// depends on time takes it (now, in Unix milliseconds), so tests drive the
// rate windows step by step.
//
// Semantics (Kafka's ClientQuotaManager and DefaultQuotaCallback):
//
//   - A client (user, client id) gets, for each key independently, the
//     first of these entities that has the key, and shares the rate of
//     every client the same entry covers:
//
//     1. user=<user>, client-id=<client-id>    rate per (user, client-id)
//     2. user=<user>, client-id=<default>      rate per (user, client-id)
//     3. user=<user>                           rate per user
//     4. user=<default>, client-id=<client-id> rate per (user, client-id)
//     5. user=<default>, client-id=<default>   rate per (user, client-id)
//     6. user=<default>                        rate per user
//     7. client-id=<client-id>                 rate per client-id
//     8. client-id=<default>                   rate per client-id
//
//   - The rate is Kafka's Rate over quota.window.num samples of
//     quota.window.size.seconds: the sum of the samples over the elapsed
//     window (at least num-1 full windows). After a request is recorded, a
//     rate O above the quota T costs a throttle of (O-T)/T x window (Kafka's
//     QuotaUtils.throttleTime), bounded here by MaxThrottle.
//
// Concurrency: Manager's config set is an atomic pointer to an immutable
// Set (read without locks on the ring threads); its sensors are guarded by
// one mutex per quota type, held for a map lookup and a few additions.
package quota
