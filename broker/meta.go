package broker

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/storage"
)

// metaFile is Kafka's per-log-dir identity file (KRaft meta.properties v1).
const metaFile = "meta.properties"

// loadOrCreateMeta returns the cluster id recorded in dir/meta.properties,
// creating the file (atomically: temp file, fsync, rename, fsync dir) with a
// fresh id on first start. A file naming another node.id is an error, as in
// Kafka. (OpenRegistry has already checked and written every log dir's copy
// before the broker calls this on the first.)
func loadOrCreateMeta(fs storage.FS, dir string, nodeID int32) (string, error) {
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	id, found, err := readMeta(dir, nodeID)
	if err != nil || found {
		return id, err
	}
	if id, err = newClusterID(); err != nil {
		return "", err
	}
	return id, writeMeta(fs, dir, id, nodeID)
}

// readMeta reads dir/meta.properties: its cluster id, whether the file
// exists, and an error if it names another node (node.id, or broker.id in a
// ZooKeeper-era Kafka dir) or no cluster. It writes nothing.
func readMeta(dir string, nodeID int32) (clusterID string, found bool, err error) {
	path := filepath.Join(dir, metaFile)
	props, err := readProperties(path)
	if os.IsNotExist(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	for _, key := range []string{"node.id", "broker.id"} {
		if n, ok := props[key]; ok && n != strconv.Itoa(int(nodeID)) {
			return "", true, fmt.Errorf("%s: %s %s does not match configured node.id %d (is this another broker's log dir?)", path, key, n, nodeID)
		}
	}
	id := props["cluster.id"]
	if id == "" {
		return "", true, fmt.Errorf("%s: no cluster.id", path)
	}
	return id, true, nil
}

// newClusterID makes a cluster id in Kafka's form (a base64url UUID).
func newClusterID() (string, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(raw[:]), nil
}

// writeMeta writes dir/meta.properties (KRaft v1 layout) atomically.
func writeMeta(fs storage.FS, dir, clusterID string, nodeID int32) error {
	var dirID [16]byte
	if _, err := rand.Read(dirID[:]); err != nil {
		return err
	}
	content := fmt.Sprintf("#\n#ringbroker\nversion=1\ncluster.id=%s\nnode.id=%d\ndirectory.id=%s\n",
		clusterID, nodeID, base64.RawURLEncoding.EncodeToString(dirID[:]))
	return storage.WriteFileAtomic(fs, filepath.Join(dir, metaFile), []byte(content))
}

// readProperties reads a properties file with the config package's reader
// (java.util.Properties syntax: escapes, continuation lines, ':' separators),
// values trimmed. A missing file is an os.IsNotExist error.
func readProperties(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	props, err := config.ReadProperties(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for k, v := range props {
		props[k] = strings.TrimSpace(v)
	}
	return props, nil
}
