package broker

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ringbroker/ringbroker/log"
)

// metaFile is Kafka's per-log-dir identity file (KRaft meta.properties v1).
const metaFile = "meta.properties"

// loadOrCreateMeta returns the cluster id recorded in dir/meta.properties,
// creating the file (atomically: temp file, fsync, rename, fsync dir) with a
// fresh id on first start. A file naming another node.id is an error, as in
// Kafka.
func loadOrCreateMeta(dir string, nodeID int32) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, metaFile)
	props, err := readProperties(path)
	if err == nil {
		id := props["cluster.id"]
		if id == "" {
			return "", fmt.Errorf("%s: no cluster.id", path)
		}
		if n, ok := props["node.id"]; ok && n != strconv.Itoa(int(nodeID)) {
			return "", fmt.Errorf("%s: node.id %s does not match configured node.id %d", path, n, nodeID)
		}
		return id, nil
	}
	if !os.IsNotExist(err) {
		return "", err
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	var dirID [16]byte
	_, _ = rand.Read(dirID[:])
	content := fmt.Sprintf("#\n#ringbroker\nversion=1\ncluster.id=%s\nnode.id=%d\ndirectory.id=%s\n",
		id, nodeID, base64.RawURLEncoding.EncodeToString(dirID[:]))
	if err := writeFileAtomic(path, []byte(content)); err != nil {
		return "", err
	}
	return id, nil
}

func readProperties(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out, sc.Err()
}

// writeFileAtomic replaces path with data crash-safely (log.WriteFileAtomic).
func writeFileAtomic(path string, data []byte) error { return log.WriteFileAtomic(path, data) }
