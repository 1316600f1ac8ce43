package controller

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

// RegisterBroker answers a BrokerRegistration (key 62). nextOffset is the
// metadata log offset the RegisterBrokerRecord will take: it is the new
// broker epoch, as in Kafka, and the offset the broker's heartbeats must
// report having caught up to before it is unfenced.
//
//   - a cluster id other than ours: INCONSISTENT_CLUSTER_ID;
//   - a broker id registered with another incarnation whose session is
//     alive: DUPLICATE_BROKER_REGISTRATION (the other process still
//     heartbeats);
//   - otherwise a RegisterBrokerRecord, fenced; a broker that was
//     registered before loses its ISR places and leaderships at once (it
//     restarted, so its log may be behind what it acknowledged).
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
	if had && old.IncarnationID != req.IncarnationID {
		if s := c.sessionOf(now, old); now.Before(s.deadline) {
			resp.ErrorCode = kerr.DuplicateBrokerRegistration.Code
			return resp, nil
		}
	}
	b := newBatch(img)
	rec := &metadata.RegisterBrokerRecord{Ver: 3, BrokerID: req.BrokerID, IsMigratingZkBroker: req.IsMigratingZkBroker,
		IncarnationID: req.IncarnationID, BrokerEpoch: nextOffset, Fenced: true, LogDirs: req.LogDirs}
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
	c.sessions[req.BrokerID] = &session{epoch: nextOffset, deadline: now.Add(c.cfg.SessionTimeout)}
	if had {
		c.removeFromISR(b, req.BrokerID)
	}
	resp.BrokerEpoch = nextOffset
	return resp, b.done()
}

// Heartbeat answers a BrokerHeartbeat (key 63) and renews the broker's
// session.
//
//   - an unregistered broker: BROKER_ID_NOT_REGISTERED; an epoch other
//     than its registration's: STALE_BROKER_EPOCH;
//   - a fenced broker that has caught up (CurrentMetadataOffset at or
//     past its registration's offset) and does not ask to stay fenced is
//     unfenced, and leads again the offline partitions whose ISR it is in;
//   - WantFence from an unfenced broker fences it;
//   - WantShutdown: a fenced broker may stop at once; an unfenced one
//     enters controlled shutdown: it leaves every ISR it is not the last
//     member of and its leaderships move to other ISR members (or to
//     none), and it is told ShouldShutdown once the image it heartbeats
//     against shows it leads nothing.
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
	caughtUp := req.CurrentMetadataOffset >= br.Epoch
	resp.IsCaughtUp = caughtUp
	switch {
	case req.WantShutdown && br.Fenced:
		resp.ShouldShutdown = true
	case req.WantShutdown:
		if !s.shuttingDown {
			s.shuttingDown = true
			c.removeFromISR(b, br.ID)
		}
		resp.ShouldShutdown = !leadsAny(img, br.ID)
	case req.WantFence && !br.Fenced:
		b.add(&metadata.FenceBrokerRecord{ID: br.ID, Epoch: br.Epoch})
		c.removeFromISR(b, br.ID)
	case !req.WantFence && br.Fenced && caughtUp && !s.shuttingDown:
		b.add(&metadata.UnfenceBrokerRecord{ID: br.ID, Epoch: br.Epoch})
		c.electOffline(b)
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
		if br.Fenced || now.Before(s.deadline) {
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
