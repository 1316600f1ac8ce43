package storage

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Checkpoint file names in a log dir, as in Kafka.
const (
	RecoveryPointCheckpointFile  = "recovery-point-offset-checkpoint"
	LogStartOffsetCheckpointFile = "log-start-offset-checkpoint"
	// CleanerOffsetCheckpointFile holds each compacted partition's first
	// dirty offset: where the cleaner's next round starts.
	CleanerOffsetCheckpointFile = "cleaner-offset-checkpoint"
	CleanShutdownFile           = ".kafka_cleanshutdown"
)

// Kafka's offset checkpoint text format:
//
//	0                  <- version
//	2                  <- number of entries
//	orders 0 1234      <- topic partition offset
//	orders 1 99
//
// Written to <file>.tmp, fdatasync'd, renamed over <file>, dir fsync'd.

// WriteCheckpoint writes offsets to path atomically in Kafka's format.
func WriteCheckpoint(fs FS, path string, offsets map[TopicPartition]int64) error {
	keys := make([]TopicPartition, 0, len(offsets))
	for tp := range offsets {
		keys = append(keys, tp)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Topic != keys[j].Topic {
			return keys[i].Topic < keys[j].Topic
		}
		return keys[i].Partition < keys[j].Partition
	})
	var b strings.Builder
	fmt.Fprintf(&b, "0\n%d\n", len(keys))
	for _, tp := range keys {
		fmt.Fprintf(&b, "%s %d %d\n", tp.Topic, tp.Partition, offsets[tp])
	}
	return WriteFileAtomic(fs, path, []byte(b.String()))
}

// ReadCheckpoint parses a checkpoint file; a missing file is an empty map.
func ReadCheckpoint(fs FS, path string) (map[TopicPartition]int64, error) {
	data, err := fsOrDefault(fs).ReadFile(path)
	if os.IsNotExist(err) {
		return map[TopicPartition]int64{}, nil
	}
	if err != nil {
		return nil, err
	}
	return parseCheckpoint(path, data)
}

// parseCheckpoint parses a checkpoint file's content.
func parseCheckpoint(path string, data []byte) (map[TopicPartition]int64, error) {
	out := map[TopicPartition]int64{}
	var err error
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	var want int
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		line++
		switch line {
		case 1:
			if t != "0" {
				return nil, fmt.Errorf("%s: unsupported checkpoint version %q", path, t)
			}
		case 2:
			if want, err = strconv.Atoi(t); err != nil || want < 0 {
				return nil, fmt.Errorf("%s: bad entry count %q", path, t)
			}
		default:
			fs := strings.Fields(t)
			if len(fs) != 3 {
				return nil, fmt.Errorf("%s:%d: malformed line %q", path, line, t)
			}
			p, err1 := strconv.ParseInt(fs[1], 10, 32)
			o, err2 := strconv.ParseInt(fs[2], 10, 64)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("%s:%d: malformed line %q", path, line, t)
			}
			out[TopicPartition{fs[0], int32(p)}] = o
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if line < 2 || len(out) != want {
		return nil, fmt.Errorf("%s: expected %d entries, found %d", path, want, len(out))
	}
	return out, nil
}
