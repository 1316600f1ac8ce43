package perf

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CreateTopic creates a topic with replication factor 1 and the given
// configs (what kafka-topics.sh --create does for the scenarios). An
// existing topic is not an error when ifNotExists is set.
func CreateTopic(ctx context.Context, bootstrap []string, topic string, partitions int32, configs map[string]string, ifNotExists bool) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var cfg map[string]*string
	if len(configs) > 0 {
		cfg = make(map[string]*string, len(configs))
		for k, v := range configs {
			cfg[k] = &v
		}
	}
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if ifNotExists && errors.Is(err, kerr.TopicAlreadyExists) {
		return nil
	}
	return err
}
