package cluster

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/quorum"
)

// lifecycle keeps this broker registered with the active controller: it
// registers (again after a STALE_BROKER_EPOCH or a lost session) and
// heartbeats every HeartbeatInterval with the metadata offset it applied,
// which is what unfences it.
func (n *Node) lifecycle() {
	failures := 0
	wait := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-n.closing:
			return false
		case <-n.lifecycleCtx.Done():
			return false
		}
	}
	for {
		select {
		case <-n.closing:
			return
		case <-n.lifecycleCtx.Done(): // a controlled shutdown heartbeats by itself
			return
		default:
		}
		if n.brokerEpoch.Load() < 0 {
			if err := n.register(); err != nil {
				failures++
				if failures%20 == 1 {
					n.log.Info("broker registration not done yet; retrying", zap.Error(err))
				}
				if !wait(backoff(failures)) {
					return
				}
				continue
			}
			failures = 0
		}
		if err := n.heartbeat(n.lifecycleCtx, heartbeatTimeout); err != nil {
			failures++
			if failures%20 == 1 {
				n.log.Info("broker heartbeat failed; retrying", zap.Error(err))
			}
			if !wait(backoff(failures)) {
				return
			}
			continue
		}
		failures = 0
		if !wait(n.cfg.HeartbeatInterval) {
			return
		}
	}
}

func (n *Node) register() error {
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.Version = 3
	if n.cfg.PreviousBrokerEpoch != nil {
		req.PreviousBrokerEpoch = n.cfg.PreviousBrokerEpoch()
	}
	req.BrokerID = n.cfg.NodeID
	req.ClusterID = n.cfg.ClusterID
	req.IncarnationID = n.incarnation
	for _, e := range n.cfg.Endpoints {
		l := kmsg.NewBrokerRegistrationRequestListener()
		l.Name, l.Host, l.Port, l.SecurityProtocol = e.Name, e.Host, e.Port, e.SecurityProtocol
		req.Listeners = append(req.Listeners, l)
	}
	if n.cfg.Rack != "" {
		rack := n.cfg.Rack
		req.Rack = &rack
	}
	ctx, cancel := context.WithTimeout(n.lifecycleCtx, 10*time.Second)
	defer cancel()
	resp, index, err := n.call(ctx, req)
	if err != nil {
		return err
	}
	r := resp.(*kmsg.BrokerRegistrationResponse)
	if r.ErrorCode != 0 {
		return kerr.ErrorForCode(r.ErrorCode)
	}
	// The first answer says how far this node must catch up before its
	// broker follows the metadata (applier).
	if n.catchUpTo.CompareAndSwap(0, max(index, 1)) {
		select {
		case n.catchUpWake <- struct{}{}:
		default:
		}
	}
	if err := n.waitApplied(ctx, index); err != nil {
		return err
	}
	n.brokerEpoch.Store(r.BrokerEpoch)
	if n.cfg.OnBrokerEpoch != nil {
		n.cfg.OnBrokerEpoch(r.BrokerEpoch)
	}
	n.log.Info("registered with the controller", zap.Int64("broker_epoch", r.BrokerEpoch), zap.Int32("controller", n.ControllerID()))
	return nil
}

// heartbeatTimeout bounds one heartbeat of the lifecycle loop.
const heartbeatTimeout = 5 * time.Second

// heartbeat sends one BrokerHeartbeat to the controller, bounded by timeout.
func (n *Node) heartbeat(parent context.Context, timeout time.Duration) error {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.Version = 0
	req.BrokerID = n.cfg.NodeID
	req.BrokerEpoch = n.brokerEpoch.Load()
	req.CurrentMetadataOffset = int64(n.synced.Load()) // what this broker serves from
	req.WantShutdown = n.wantShutdown.Load()
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	resp, _, err := n.call(ctx, req)
	if err != nil {
		return err
	}
	r := resp.(*kmsg.BrokerHeartbeatResponse)
	switch r.ErrorCode {
	case 0:
	case kerr.StaleBrokerEpoch.Code, kerr.BrokerIDNotRegistered.Code:
		n.brokerEpoch.Store(-1) // register again
		return kerr.ErrorForCode(r.ErrorCode)
	default:
		return kerr.ErrorForCode(r.ErrorCode)
	}
	if r.ShouldShutdown {
		n.shutdownOnceOK()
	}
	return nil
}

func (n *Node) shutdownOnceOK() {
	n.shutdownOKOnce.Do(func() { close(n.shutdownOK) })
}

// controlledShutdown asks the controller to move this broker's
// leaderships away and waits until it says it may stop, or ctx ends.
func (n *Node) controlledShutdown(ctx context.Context) {
	if n.brokerEpoch.Load() < 0 {
		return
	}
	n.wantShutdown.Store(true)
	n.lifecycleCancel()
	// Without a quorum nobody can move the leaderships: stop waiting once
	// no active controller has answered for noControllerWait (every node
	// of a cluster stopping at once). The clock runs from the last
	// heartbeat an active controller answered, not from when this node
	// noticed it knows none: the controller this node last knew of may be
	// gone already (the first node of a whole cluster stopping), and it
	// takes this node an election timeout to notice. A heartbeat that
	// timed out (a slow controller, or this node's own proposal waiting for
	// a quorum that left) neither restarts the clock nor ends the wait;
	// each is bounded by noControllerWait so the next one asks whoever
	// leads by then. And once a majority of the voters refuse connections
	// (majorityRefused: they stopped), no controller can be elected: the
	// wait ends at once.
	lastReached := time.Now()
	for {
		err := n.shutdownHeartbeat()
		switch {
		case err == nil:
			lastReached = time.Now()
		case noController(err), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			if noController(err) && time.Since(lastReached) > noControllerWait {
				n.log.Warn("controlled shutdown skipped: no active controller answered (is a majority of the voters down?)",
					zap.Duration("for", time.Since(lastReached).Round(time.Millisecond)), zap.Error(err))
				return
			}
			if n.majorityRefused() {
				n.log.Warn("controlled shutdown skipped: no active controller, and a majority of the voters refuse connections (stopped)", zap.Error(err))
				return
			}
		default: // the controller answered with an error
			lastReached = time.Now()
		}
		if err != nil {
			n.log.Info("controlled shutdown heartbeat", zap.Error(err))
		}
		select {
		case <-n.shutdownOK:
			n.log.Info("controlled shutdown done: the controller moved this broker's leaderships")
			return
		case <-ctx.Done():
			n.log.Warn("controlled shutdown timed out; stopping anyway")
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// shutdownHeartbeat is one heartbeat of a controlled shutdown, bounded by
// noControllerWait, and given up early once majorityRefused: this node may
// be the controller itself, its own heartbeat then waiting on a proposal
// the voters that left can no longer commit.
func (n *Node) shutdownHeartbeat() error {
	ctx, cancel := context.WithTimeout(context.Background(), noControllerWait)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		poll := time.NewTicker(50 * time.Millisecond)
		defer poll.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-poll.C:
				if n.majorityRefused() {
					cancel()
					return
				}
			}
		}
	}()
	return n.heartbeat(ctx, noControllerWait)
}

// majorityRefused: this node is a voter, and so many of the other voters
// refused its last connection attempt (nothing listens there: stopped)
// that the rest cannot make a majority, so no controller can be elected
// until one of them starts again. A peer merely not connected (a dropped
// connection being redialled, a timeout) still counts as reachable.
func (n *Node) majorityRefused() bool {
	if n.rn == nil {
		return false
	}
	voters := n.rn.Status().Voters
	self := raftID(n.cfg.NodeID)
	reachable := 0
	for _, v := range voters {
		if v == self {
			reachable++
			continue
		}
		connected, err := n.tr.PeerStatus(v)
		if connected || !errors.Is(err, syscall.ECONNREFUSED) {
			reachable++
		}
	}
	return slices.Contains(voters, self) && reachable <= len(voters)/2
}

// noControllerWait is how long a controlled shutdown goes on asking when no
// active controller answers (see noController).
const noControllerWait = 2 * time.Second

// noController: err says no active controller took the heartbeat: none is
// known (or the node asked is not it), or the one this node knows of is not
// connected. A controller that answered with another error, or a heartbeat
// that timed out, is not this: a slow controller is still waited for.
func noController(err error) bool {
	var remote *quorum.RemoteError
	return errors.Is(err, kerr.NotController) || errors.Is(err, errControllerNotConnected) ||
		errors.As(err, &remote) && remote.Code == kerr.NotController.Code
}
