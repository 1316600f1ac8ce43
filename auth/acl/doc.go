// Package acl is the authorizer: Kafka's ACL model and its
// StandardAuthorizer decision, free of I/O, clocks and the network.
//
// Model. A Binding (Kafka's AclBinding) is a ResourcePattern (resource
// type, name, LITERAL or PREFIXED) and an Entry (principal "User:name",
// host, operation, ALLOW or DENY). Enums carry Kafka's wire codes, so a
// handler copies kmsg fields straight in (ResourceTypeFromCode and
// friends map an unknown code to UNKNOWN, as Kafka's fromCode does).
// Authorize answers one question with Kafka's rules (see its comment):
// DENY wins, User:* and host "*" are wildcards, LITERAL "*" matches every
// name, PREFIXED matches by prefix, ALLOW READ/WRITE/DELETE/ALTER imply
// DESCRIBE and ALLOW ALTER_CONFIGS implies DESCRIBE_CONFIGS, ALL matches
// everything, super.users are always allowed, and
// allow.everyone.if.no.acl.found decides only when no binding applies to
// the resource at all.
//
// Concurrency. Readers (every request handler) call Authorize on an
// immutable snapshot loaded through an atomic pointer: no lock, no
// allocation (BenchmarkAuthorize, TestAuthorizeDoesNotAllocate). Writers
// (CreateAcls, DeleteAcls, loading the store) serialise on a mutex and
// publish a whole new snapshot; a change is seen entirely or not at all.
// Generation changes with every change, for a per-connection cache of
// answers.
//
// Durability. Encode gives the canonical bytes of the set and Decode
// reads them back (FuzzDecodeACLs); the broker writes them to its local
// store after each successful Create or Delete that changed something and
// calls Load at startup. When ACLs move into the metadata quorum, the
// records replay into Load (or into Create/Delete) instead: a backend
// change, nothing here.
//
// What the broker must do to use it:
//   - build Config from server.properties (super.users via
//     ParseSuperUsers, allow.everyone.if.no.acl.found, a bound);
//   - hand each request the connection's Principal and its host as
//     Kafka prints it (the IP address string, computed once per
//     connection so Authorize stays allocation-free);
//   - authorize in each handler exactly as KafkaApis does: TOPIC,
//     GROUP, CLUSTER ("kafka-cluster"), TRANSACTIONAL_ID, with the
//     matching *_AUTHORIZATION_FAILED errors, and hide from Metadata and
//     ListGroups what the principal may not DESCRIBE;
//   - InitProducerId without a transactional id: AuthorizeIdempotentWrite
//     (IDEMPOTENT_WRITE on the cluster or WRITE on any topic, KIP-679),
//     else CLUSTER_AUTHORIZATION_FAILED;
//   - CreateAcls/DescribeAcls/DeleteAcls: authorize ALTER (create,
//     delete) or DESCRIBE (describe) on the cluster first, as Kafka does,
//     then map kmsg fields to Binding/Filter and call Create, Describe,
//     Delete; their results carry Kafka's error codes and messages.
//
// Deliberate differences from Kafka: a bound on the number of bindings
// (POLICY_VIOLATION beyond it); a principal without a colon or an empty
// host is refused at creation (Kafka stores it); DeleteAcls has no
// 10,000-per-request limit (the set itself is bounded).
package acl
