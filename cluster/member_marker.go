package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/quorum"
	"github.com/ringbroker/ringbroker/storage"
)

// A dynamic quorum is formed once, at its first start: the node given
// controller.quorum.standalone or controller.quorum.initial.controllers
// writes raft's bootstrap entries into its empty metadata log (Kafka's
// `kafka-storage.sh format`). A node that keeps those keys and later finds
// its metadata log gone (a deleted __cluster_metadata-0, a restored backup
// of the dir without it) would bootstrap again: a second quorum under the
// same cluster id, a majority of one for standalone, its own metadata
// history. Kafka refuses to start an unformatted log dir; here the format
// step is implicit, so the node records that it is a member:
// memberMarkerName in the metadata dir, beside (not inside) the log, written
// once the log holds the quorum's entries (at the first applied metadata
// entry of each life: entries are durable before they commit). A start
// that would bootstrap finds the marker and no log and refuses, before it
// opens (creates) the log: nothing is touched.
//
// Limits: the marker lives in the metadata dir, so losing the whole dir
// (metadata.log.dir on a lost disk) loses it too, and that start looks like
// a first one, as it does to Kafka when meta.properties is gone. Nodes
// that join (neither key) are not guarded: they are added by the quorum's
// leader, which knows them by node id only (no directory ids yet).

// memberMarkerName is the marker file in the metadata dir.
const memberMarkerName = "quorum-member.properties"

// refuseRebootstrap returns an error when this start would bootstrap a
// dynamic quorum but the metadata dir records this node as a member of one
// already formed and the metadata log holds nothing. It only reads.
func (n *Node) refuseRebootstrap(logDir string) error {
	marker := filepath.Join(n.cfg.MetadataDir, memberMarkerName)
	b, err := n.cfg.FS.ReadFile(marker)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", marker, err)
	}
	holds, err := quorum.DiskStorageHolds(logDir, n.cfg.FS)
	if err != nil {
		return fmt.Errorf("metadata log %s: %w", logDir, err)
	}
	if holds {
		return nil
	}
	cluster := "?"
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster.id="); ok {
			cluster = v
		}
	}
	return fmt.Errorf("metadata log %s is missing or empty, but %s records that node %d already joined the metadata quorum of cluster %s: "+
		"refusing to bootstrap a new quorum (controller.quorum.standalone / controller.quorum.initial.controllers are for the first start only; "+
		"this would split the cluster). Restore the metadata log; or remove those keys so the node joins the existing quorum "+
		"(under a new node.id if it was a voter: remove the old id with remove-controller first); "+
		"or, to form a new cluster on purpose, move %s away. Nothing was changed on disk",
		logDir, marker, n.cfg.NodeID, cluster, marker)
}

// noteMember writes the member marker if it is missing. Called from the
// quorum loop once per life, at the first applied metadata entry (so the
// log holds the quorum's entries durably): one small atomic write. A
// failure is logged: the marker only guards a later start.
func (n *Node) noteMember() {
	marker := filepath.Join(n.cfg.MetadataDir, memberMarkerName)
	if _, err := n.cfg.FS.Stat(marker); err == nil {
		return
	}
	content := fmt.Sprintf("# ringbroker: node %d is a member of cluster %s's metadata quorum; its log is %s.\n"+
		"# A start with an empty log refuses to bootstrap a new quorum while this file is here.\n"+
		"cluster.id=%s\nnode.id=%d\n", n.cfg.NodeID, n.cfg.ClusterID, MetadataLogName, n.cfg.ClusterID, n.cfg.NodeID)
	if err := storage.WriteFileAtomic(n.cfg.FS, marker, []byte(content)); err != nil {
		n.log.Warn("writing the quorum member marker; a later start with its metadata log lost is not guarded", zap.String("path", marker), zap.Error(err))
	}
}
