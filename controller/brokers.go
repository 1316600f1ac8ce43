package controller

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

// RegisterBroker answers a BrokerRegistration (key 62). nextOffset is the
// metadata log offset the RegisterBrokerRecord will take: a new
// incarnation's broker epoch, as in Kafka, and the offset the broker's
// heartbeats must report having caught up to before it is unfenced.
//
//   - a cluster id other than ours: INCONSISTENT_CLUSTER_ID;
//   - a broker id registered with another incarnation that is unfenced
//     and whose session is alive: DUPLICATE_BROKER_REGISTRATION (the
//     other process still heartbeats);
//   - the same incarnation again (a retry, or new listeners): the
//     registration is amended, keeping its epoch, fencing and controlled
//     shutdown (Kafka's "amending registration");
//   - a new incarnation: a RegisterBrokerRecord, fenced, with epoch
//     nextOffset. Unless the broker shut down cleanly (v3+: its
//     PreviousBrokerEpoch is the epoch registered, as Kafka 4.1 checks),
//     its log may be behind what it acknowledged: it leaves every ISR and
//     ELR and its leaderships move (Kafka's unclean shutdown handling,
//     see uncleanShutdown). Our brokers register at v1, so every restart
//     counts as unclean. With eligible leader replicas off, it leaves
//     every ISR it is not the last member of (Kafka leaves the ISRs as
//     they are until the broker is fenced).
func (c *Controller) RegisterBroker(now time.Time, img metadata.Image, nextOffset int64, req *kmsg.BrokerRegistrationRequest) (*kmsg.BrokerRegistrationResponse, []metadata.Record) {
	resp := kmsg.NewPtrBrokerRegistrationResponse()
	resp.Version = req.Version
	resp.BrokerEpoch = -1
	if req.ClusterID != c.cfg.ClusterID {
		resp.ErrorCode = kerr.InconsistentClusterID.Code
		return resp, nil
	}
	if req.BrokerID < 0 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	old, had := img.Broker(req.BrokerID)
	amend := had && old.IncarnationID == req.IncarnationID
	if had && !amend && c.hasValidSession(now, old) {
		resp.ErrorCode = kerr.DuplicateBrokerRegistration.Code
		return resp, nil
	}
	b := newBatch(img)
	rec := &metadata.RegisterBrokerRecord{Ver: 3, BrokerID: req.BrokerID, IsMigratingZkBroker: req.IsMigratingZkBroker,
		IncarnationID: req.IncarnationID, BrokerEpoch: nextOffset, Fenced: true, LogDirs: req.LogDirs}
	if amend {
		rec.BrokerEpoch, rec.Fenced, rec.InControlledShutdown = old.Epoch, old.Fenced, old.InControlledShutdown
	}
	if req.Rack != nil {
		rec.Rack = *req.Rack
	}
	for _, l := range req.Listeners {
		rec.Endpoints = append(rec.Endpoints, metadata.Endpoint{Name: l.Name, Host: l.Host, Port: l.Port, SecurityProtocol: l.SecurityProtocol})
	}
	for _, f := range req.Features {
		rec.Features = append(rec.Features, metadata.BrokerFeature{Name: f.Name, MinSupportedVersion: f.MinSupportedVersion, MaxSupportedVersion: f.MaxSupportedVersion})
	}
	b.add(rec)
	if amend {
		c.sessionOf(now, old).registeredAt = nextOffset
	} else {
		c.sessions[req.BrokerID] = &session{epoch: nextOffset, registeredAt: nextOffset, deadline: now.Add(c.cfg.SessionTimeout)}
		switch {
		case !had:
		case !elrEnabled(img):
			c.removeFromISR(b, req.BrokerID)
		case req.Version < 3 || req.PreviousBrokerEpoch != old.Epoch:
			c.uncleanShutdown(b, req.BrokerID)
		}
	}
	resp.BrokerEpoch = rec.BrokerEpoch
	return resp, b.done()
}

// hasValidSession reports whether broker b is unfenced and has
// heartbeated within the session timeout (Kafka's rule: a session is
// alive up to and including its deadline).
func (c *Controller) hasValidSession(now time.Time, b metadata.Broker) bool {
	return !b.Fenced && !now.After(c.sessionOf(now, b).deadline)
}

// Heartbeat answers a BrokerHeartbeat (key 63) and renews the broker's
// session. It follows Kafka's broker states (BrokerHeartbeatManager):
//
//   - an unregistered broker: BROKER_ID_NOT_REGISTERED; an epoch other
//     than its registration's: STALE_BROKER_EPOCH;
//   - fenced: WantShutdown may stop at once (ShouldShutdown); otherwise,
//     unless it asks to stay fenced (WantFence), it is unfenced once it
//     has caught up (CurrentMetadataOffset at or past its registration
//     record's offset), and leads again the offline partitions whose ISR
//     it is in, or whose ELR it is in when their ISR is empty;
//   - unfenced: WantFence fences it (and with WantShutdown it may stop);
//     WantShutdown from a broker that leads nothing fences it and lets it
//     stop; from one that leads partitions starts a controlled shutdown:
//     it leaves every ISR (the last member of one goes to its ELR; with
//     eligible leader replicas off it stays), its leaderships move to
//     other ISR members (or to none), and it joins no election;
//   - in controlled shutdown: once the image it heartbeats against shows
//     it leads nothing, it is fenced and told ShouldShutdown (answered
//     when the fencing record commits, so the leadership moves before it
//     are committed too; Kafka also waits for every active broker to
//     have replicated them).
//
// Leaving a broker's ISRs is what fencing does in Kafka too: the
// broker's log may fall behind while it is away; replication brings it
// back with AlterPartition.
func (c *Controller) Heartbeat(now time.Time, img metadata.Image, req *kmsg.BrokerHeartbeatRequest) (*kmsg.BrokerHeartbeatResponse, []metadata.Record) {
	resp := kmsg.NewPtrBrokerHeartbeatResponse()
	resp.Version = req.Version
	resp.IsFenced = true
	br, ok := img.Broker(req.BrokerID)
	if !ok {
		resp.ErrorCode = kerr.BrokerIDNotRegistered.Code
		return resp, nil
	}
	if br.Epoch != req.BrokerEpoch {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return resp, nil
	}
	s := c.sessionOf(now, br)
	s.deadline = now.Add(c.cfg.SessionTimeout)
	b := newBatch(img)
	caughtUp := req.CurrentMetadataOffset >= s.registeredAt
	resp.IsCaughtUp = caughtUp
	fence := func() {
		b.add(&metadata.FenceBrokerRecord{ID: br.ID, Epoch: br.Epoch})
		c.removeFromISR(b, br.ID)
	}
	switch {
	case br.Fenced:
		if req.WantShutdown {
			resp.ShouldShutdown = true
		} else if !req.WantFence && caughtUp {
			s.shuttingDown = false
			b.add(&metadata.UnfenceBrokerRecord{ID: br.ID, Epoch: br.Epoch})
			c.electOffline(b)
		}
	case s.shuttingDown || br.InControlledShutdown:
		if !leadsAny(img, br.ID) {
			fence()
			resp.ShouldShutdown = true
		}
	case req.WantFence:
		fence()
		resp.ShouldShutdown = req.WantShutdown
	case req.WantShutdown:
		if leadsAny(img, br.ID) {
			s.shuttingDown = true
			c.removeFromISR(b, br.ID)
		} else {
			fence()
			resp.ShouldShutdown = true
		}
	}
	nb, _ := b.image().Broker(br.ID)
	resp.IsFenced = nb.Fenced
	return resp, b.done()
}

// leadsAny reports whether broker id leads a partition in img.
func leadsAny(img metadata.Image, id int32) bool {
	for _, t := range img.Topics() {
		for _, p := range t.Partitions {
			if p.Leader == id {
				return true
			}
		}
	}
	return false
}

// Tick is the controller's clock: it fences every unfenced broker whose
// session has expired (each leaving its ISRs and leaderships as a
// WantFence would), gives a leader to every partition whose leader is not
// active when an active ISR member exists (a partition that went offline
// comes back when an ISR replica is unfenced), and every
// LeaderImbalanceCheckInterval, when AutoLeaderRebalance is on, moves
// leadership back to preferred replicas (see rebalance).
//
// Tick reads every partition of the image: its cost is linear in the
// partitions, which the caller's tick rate (about a second) bounds.
func (c *Controller) Tick(now time.Time, img metadata.Image) []metadata.Record {
	b := newBatch(img)
	for id := range c.sessions {
		if _, ok := img.Broker(id); !ok {
			delete(c.sessions, id)
		}
	}
	for _, br := range img.Brokers() {
		s := c.sessionOf(now, br)
		if br.Fenced || !now.After(s.deadline) {
			continue
		}
		b.add(&metadata.FenceBrokerRecord{ID: br.ID, Epoch: br.Epoch})
		c.removeFromISR(b, br.ID)
	}
	c.electOffline(b)
	if c.cfg.AutoLeaderRebalance && !now.Before(c.nextRebalance) {
		c.nextRebalance = now.Add(c.cfg.LeaderImbalanceCheckInterval)
		c.rebalance(b)
	}
	return b.done()
}
