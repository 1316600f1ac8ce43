// Package controller is the active controller of issue 15 as an I/O-free
// state machine: its inputs are requests (broker registration, heartbeats,
// the admin requests brokers forward), clock readings and the current
// metadata.Image; its outputs are the metadata records to propose and the
// answers to send. The raft leader runs it; nothing here touches a file, a
// socket or a goroutine, and its tests are datadriven scripts.
//
// # Use
//
//	c := controller.New(cfg)       // cfg.NewUUID is required
//	c.Activate(now, committed)     // on becoming raft leader
//	resp, recs := c.Heartbeat(now, img, req)
//	recs = c.Tick(now, img)        // about once a second
//
// Every method takes the image to decide against and returns the records
// to propose, in order; they apply cleanly to that image (the controller
// applies them as it builds them, and panics on a refusal: a bug here,
// never a bad request). The image should be the latest one: the committed
// image plus the records proposed and not yet committed, as Kafka's
// controller decides on its uncommitted state; deciding twice on an image
// that lacks records already proposed would propose their changes twice.
// When leadership changes, uncommitted records may be lost: Activate the
// new leader with the committed image. Each response is sent once its
// records commit (raft commits in order, so the records of earlier calls
// are committed too).
//
// Kafka APIs answered: BrokerRegistration (62), BrokerHeartbeat (63),
// CreateTopics (19), DeleteTopics (20), CreatePartitions (37),
// AlterConfigs (33), IncrementalAlterConfigs (44), ElectLeaders (43),
// AlterPartitionReassignments (45), ListPartitionReassignments (46),
// AlterPartition (56). Each method's comment gives its errors.
//
// # State
//
// Hard state is the image. Soft state is one session per broker (its
// heartbeat deadline, the offset of its latest registration, and whether
// it is in controlled shutdown), rebuilt by Activate: every registered
// broker gets a full session timeout, as when a Kafka controller fails
// over. Time is a parameter; a session is alive up to and including its
// deadline.
//
// # Replica rules (Kafka's KRaft controller, with KIP-966)
//
// A broker is active when registered, unfenced and not in controlled
// shutdown; only active brokers lead, join an ISR through AlterPartition,
// or receive new replicas. A broker that is fenced (session expiry,
// WantFence) or starts a controlled shutdown leaves every ISR; a
// partition it led gets the first active ISR member in replica order, or
// no leader (-1). Unfencing, and every Tick, give a leader to leaderless
// partitions with an eligible replica. A broker that comes back is not
// put back in the ISRs it left: the partition's leader does that with
// AlterPartition once it has caught up.
//
// Eligible leader replicas (KIP-966, elr.go; on unless the feature
// eligible.leader.replicas.version is finalized at 0): every ISR change
// that leaves the ISR below the topic's min ISR (min.insync.replicas,
// default 1, capped at the replication factor) puts the replicas it
// drops in the partition's ELR, and one at or above it clears the ELR.
// So fencing the last ISR member empties the ISR and puts the broker in
// the ELR; when the ISR is empty, an active ELR member is eligible and is
// elected cleanly, the ISR becoming it alone (RF 1: the broker leads
// again when it comes back). A new incarnation of a registered broker
// whose registration does not name its previous broker epoch (v3's
// PreviousBrokerEpoch, which a broker sends after a clean shutdown) had
// an unclean shutdown: it leaves every ISR and ELR (LastKnownELR keeps
// it). With the feature at 0, the last ISR member stays in the ISR
// instead (Kafka without KIP-966) and a new incarnation leaves the ISRs
// it is not the last member of.
//
// A topic with unclean.leader.election.enable=true (a topic config,
// default false) lets these automatic elections, when no ISR or ELR
// member is eligible, take the first active replica in replica order: the
// ISR becomes that leader alone, the ELR is cleared, and the leader
// recovers (LeaderRecoveryState 1) until its AlterPartition says it has
// recovered, as in Kafka. Such a record is recognised by
// IsUncleanElection, which the caller logs. An ElectLeaders of type
// unclean does the same for the partitions it names, whatever the config.
//
// AlterPartition is the leader's only way to change an ISR: it is checked
// in Kafka's order (broker epoch, topic, partition, leader and partition
// epochs, the ISR's shape, its members' eligibility) and writes a
// PartitionChangeRecord bumping the partition epoch only. The controller
// itself only shrinks ISRs (fencing, controlled shutdown, a new
// incarnation, reassignment), or replaces one with its new leader in an
// election from the ELR or an unclean one. A change of leader bumps the leader epoch, and so
// does a replica leaving the replica set (a reassignment completing or
// cancelled), as in Kafka.
//
// # Differences from Apache Kafka
//
//   - Records are the ones package metadata has: FenceBrokerRecord and
//     UnfenceBrokerRecord rather than BrokerRegistrationChangeRecord, so
//     controlled shutdown is soft state: a controller that takes over
//     forgets it (the broker then shuts down through a fresh
//     WantShutdown, or its session expires) and may elect it meanwhile.
//   - Placement spreads leaders by starting each partition at the active
//     broker with the fewest preferred leaderships (counting existing
//     topics) and then takes followers on racks the partition does not
//     use yet, fewest replicas first; Kafka's StripedReplicaPlacer starts
//     at a random broker of a rack-alternating list. Both spread leaders
//     evenly and replicas over racks; ours is deterministic.
//   - Automatic leader rebalance follows the ZooKeeper-era rule
//     (leader.imbalance.per.broker.percentage); Kafka's KRaft controller
//     ignores the percentage and moves every imbalanced partition.
//   - With eligible leader replicas off, a new incarnation of a
//     registered broker leaves its ISRs at once (Kafka does so only with
//     them on). With them on, replicas that leave the replica set also
//     leave the ELR and LastKnownELR (Kafka keeps them until the next
//     change), and PartitionChangeRecords are written at version 2 only
//     when they change the ELR (version 0 otherwise: see
//     metadata.PartitionChangeRecord); Kafka writes its metadata
//     version's. The feature level is read from the image; UpdateFeatures
//     does not serve eligible.leader.replicas.version (features.go), so
//     it stays at its default.
//     The "last known leader" recovery option of KIP-966 is not
//     implemented (Kafka leaves it off by default).
//   - unclean.leader.election.enable is read from the topic's config
//     only (Kafka falls back to the cluster-wide and static broker
//     values); a reassignment's cancel does not elect uncleanly.
//   - min.insync.replicas is read from the topic's config, else the
//     configured default (Kafka also reads the cluster-wide dynamic
//     value); no create.topic.policy or alter.config.policy, no controller
//     mutation quota, no UnregisterBroker; CreateTopics answers no
//     configs (the forwarding broker describes them).
//   - Registration does not check the broker's supported feature
//     versions (no metadata.version yet) nor its log directories;
//     heartbeats' OfflineLogDirs are ignored (one log directory).
//   - A controlled shutdown completes when the image passed in shows the
//     broker leads nothing, and the answer waits for the commit of the
//     fencing record (Kafka also waits for every active broker to have
//     replicated the records that moved its leaderships).
//   - Tick reads every partition (linear in partitions per tick); Kafka
//     keeps indexes from broker to partitions.
package controller
