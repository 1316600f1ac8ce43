package broker

// DescribeLogDirs (key 35), versions 0-4.
//
// Behaviour: one entry per configured log dir (its absolute path), listing
// the partitions stored there with their size (bytes of completed writes,
// Log.Size) and offset lag 0 (no replica is ever behind: there is one). A
// null topic list means every partition; otherwise only the named
// topic-partitions that exist (unknown ones are left out, as in Kafka).
// v4 adds the file system's total and usable bytes (statfs; -1 when statfs
// fails). A log dir that cannot be read, or that an I/O error took
// offline (log_dir_failure.go), is KAFKA_STORAGE_ERROR.
//
// Runs on the admin worker, not the ring thread: Log.Size takes each log's
// lock, which Close holds across an fdatasync, and statfs is a file system
// call.
//
// Differences from Apache Kafka: no future (is_future) replicas, no
// cordoned dirs (v5 is not served); a full admin queue answers with the
// top-level error REQUEST_TIMED_OUT (v3+; earlier versions get an empty
// answer).

import (
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(adminDecoded(kmsg.DescribeLogDirs, 0, 4, (*Broker).describeLogDirs))
}

// describeLogDirs runs on the admin worker (adminDecoded).
func (b *Broker) describeLogDirs(req netpoll.Request, h *proto.RequestHeader, r *kmsg.DescribeLogDirsRequest) {
	resp := kmsg.DescribeLogDirsResponse{Version: h.APIVersion}
	if b.reg == nil {
		b.replyMsg(req, h, &resp)
		return
	}
	// wanted[topic] = partitions asked for; nil map = everything.
	var wanted map[string]map[int32]bool
	if r.Topics != nil {
		wanted = make(map[string]map[int32]bool, len(r.Topics))
		for _, t := range r.Topics {
			ps := wanted[t.Topic]
			if ps == nil {
				ps = map[int32]bool{}
				wanted[t.Topic] = ps
			}
			for _, p := range t.Partitions {
				ps[p] = true
			}
		}
	}
	dirs := b.reg.LogDirs()
	resp.Dirs = make([]kmsg.DescribeLogDirsResponseDir, len(dirs))
	for i, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			abs = d
		}
		out := &resp.Dirs[i]
		out.Dir, out.TotalBytes, out.UsableBytes = abs, -1, -1
		var st unix.Statfs_t
		if b.reg.dirOffline(i) { // an I/O error took it offline (log_dir_failure.go), as Kafka answers
			out.ErrorCode = kerr.KafkaStorageError.Code
		} else if err := unix.Statfs(d, &st); err != nil {
			out.ErrorCode = kerr.KafkaStorageError.Code
		} else {
			out.TotalBytes = int64(st.Blocks) * st.Bsize
			out.UsableBytes = int64(st.Bavail) * st.Bsize
		}
	}
	for _, v := range allTopicViews(b.reg) {
		var ps map[int32]bool
		if wanted != nil {
			if ps = wanted[v.t.Name]; ps == nil {
				continue
			}
		}
		perDir := make([]*kmsg.DescribeLogDirsResponseDirTopic, len(dirs))
		for _, p := range v.partitions {
			if ps != nil && !ps[p.Index] || p.dir < 0 || p.dir >= len(dirs) {
				continue
			}
			if resp.Dirs[p.dir].ErrorCode != 0 {
				continue
			}
			dt := perDir[p.dir]
			if dt == nil {
				dt = &kmsg.DescribeLogDirsResponseDirTopic{Topic: v.t.Name}
				perDir[p.dir] = dt
			}
			dt.Partitions = append(dt.Partitions, kmsg.DescribeLogDirsResponseDirTopicPartition{Partition: p.Index, Size: p.Log.Size(), OffsetLag: 0})
		}
		for i, dt := range perDir {
			if dt != nil {
				resp.Dirs[i].Topics = append(resp.Dirs[i].Topics, *dt)
			}
		}
	}
	b.replyMsg(req, h, &resp)
}
