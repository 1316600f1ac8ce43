package main

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/broker"
	"github.com/ringbroker/ringbroker/cluster"
	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/controller"
	"github.com/ringbroker/ringbroker/metadata"
)

// clusterProxy is the broker's Cluster until the node has started (the
// node needs the broker to apply metadata to, the broker needs a Cluster
// at construction): an empty image and no controller before.
type clusterProxy struct {
	node  atomic.Pointer[cluster.Node]
	empty metadata.Image
}

func newClusterProxy() *clusterProxy { return &clusterProxy{} }

func (p *clusterProxy) set(n *cluster.Node) { p.node.Store(n) }

func (p *clusterProxy) Image() *metadata.Image {
	if n := p.node.Load(); n != nil {
		return n.ServedImage()
	}
	return &p.empty
}

func (p *clusterProxy) ControllerID() int32 {
	if n := p.node.Load(); n != nil {
		return n.ControllerID()
	}
	return -1
}

func (p *clusterProxy) Forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	if n := p.node.Load(); n != nil {
		return n.Forward(ctx, req)
	}
	return nil, kerr.NotController
}

// Applied is the metadata index the node has applied: the broker's
// FinalizedFeaturesEpoch when its features change.
func (p *clusterProxy) Applied() uint64 {
	if n := p.node.Load(); n != nil {
		return n.Applied()
	}
	return 0
}

func (p *clusterProxy) AllocateProducerIDs(ctx context.Context) (int64, int32, error) {
	if n := p.node.Load(); n != nil {
		return n.AllocateProducerIDs(ctx)
	}
	return 0, 0, kerr.NotController
}

func (p *clusterProxy) AlterPartition(ctx context.Context, topics []kmsg.AlterPartitionRequestTopic) (*kmsg.AlterPartitionResponse, error) {
	if n := p.node.Load(); n != nil {
		return n.AlterPartition(ctx, topics)
	}
	return nil, kerr.NotController
}

// startCluster joins the metadata quorum (cluster mode: process.roles set).
// The broker follows each applied image through rep (replication.go),
// which runs the replica fetchers around it.
func startCluster(cfg *config.Config, reg *broker.Registry, b *broker.Broker, rep *replication, ctlTLS *controllerTLS, logger *zap.Logger) (*cluster.Node, error) {
	var endpoints []metadata.Endpoint
	for _, l := range cfg.AdvertisedListeners {
		endpoints = append(endpoints, metadata.Endpoint{Name: l.Name, Host: l.Host, Port: uint16(l.Port), SecurityProtocol: 0})
	}
	ctl := controller.DefaultConfig()
	ctl.Broker = cfg
	ctl.SessionTimeout = time.Duration(cfg.BrokerSessionTimeoutMs) * time.Millisecond
	ctl.DefaultPartitions = cfg.NumPartitions
	ctl.DefaultReplicationFactor = cfg.DefaultReplicationFactor
	ctl.AutoLeaderRebalance = cfg.AutoLeaderRebalanceEnable
	ctl.LeaderImbalancePercent = int(cfg.LeaderImbalancePerBrokerPercentage)
	ctl.LeaderImbalanceCheckInterval = time.Duration(cfg.LeaderImbalanceCheckIntervalSeconds) * time.Second
	listen, listenerName := "", ""
	if cl := cfg.ControllerListeners(); len(cl) > 0 {
		listen, listenerName = cl[0].Addr(), cl[0].Name
	}
	// A dynamic quorum's initial voters, decided at the first start (the
	// quorum package writes them only into an empty metadata log).
	initial := cfg.QuorumInitialControllers
	if cfg.QuorumStandalone {
		initial = []config.Voter{{ID: cfg.NodeID}}
		if cl := cfg.ControllerListeners(); len(cl) > 0 {
			initial[0].Host, initial[0].Port = cl[0].Host, cl[0].Port
		}
	}
	return cluster.Start(cluster.Config{
		NodeID:                 cfg.NodeID,
		ClusterID:              reg.ClusterID(),
		Voters:                 cfg.QuorumVoters,
		BootstrapServers:       cfg.QuorumBootstrapServers,
		InitialVoters:          initial,
		ControllerListenerName: listenerName,
		ControllerListen:       listen,
		ControllerWrapListener: ctlTLS.wrap,
		ControllerDial:         ctlTLS.dial,
		NoControlledShutdown:   !cfg.ControlledShutdownEnable,
		MetadataDir:            cfg.MetadataDir(),
		Endpoints:              endpoints,
		Rack:                   cfg.BrokerRack,
		HeartbeatInterval:      time.Duration(cfg.BrokerHeartbeatIntervalMs) * time.Millisecond,
		Controller:             ctl,
		Logger:                 logger.Named("cluster"),
		OnMetadata:             rep.onMetadata(b.OnMetadata),
		LocalProducerIDsEnd:    b.LocalProducerIDsEnd,
		PreviousBrokerEpoch:    reg.PreviousBrokerEpoch,
		OnBrokerEpoch:          reg.SetBrokerEpoch,
		LocalTopics: func() []cluster.LocalTopic {
			var out []cluster.LocalTopic
			for _, t := range reg.Topics() {
				out = append(out, cluster.LocalTopic{Name: t.Name, ID: t.ID, Partitions: int32(len(t.Partitions)), Configs: t.ConfigOverrides()})
			}
			return out
		},
	})
}
