package metadata

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestShardMapCopyOnWrite applies seeded random topic creations, partition
// changes and removals over more topics than shardCount (so shards are
// shared between images and hold several topics) and checks every image
// kept along the way still holds exactly what it held when it was made:
// no Apply or ApplyAll changes an image it did not return.
func TestShardMapCopyOnWrite(t *testing.T) {
	const seed = 15
	rng := rand.New(rand.NewPCG(seed, seed))
	type kept struct {
		im    Image
		model map[string]int32 // topic name -> partition 0's leader epoch
	}
	var im Image
	model := map[string]int32{}
	ids := map[string]UUID{}
	var history []kept
	next := 0
	for step := range 6000 {
		var recs []Record
		switch op := rng.IntN(10); {
		case op < 5 || len(model) == 0:
			name := fmt.Sprintf("t%d", next)
			id := UUID{1, byte(next >> 8), byte(next)}
			next++
			recs = []Record{&TopicRecord{Name: name, TopicID: id},
				&PartitionRecord{TopicID: id, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}
			model[name], ids[name] = 0, id
		case op < 8:
			name := anyKey(rng, model)
			recs = []Record{&PartitionChangeRecord{TopicID: ids[name], Leader: 1, LeaderRecoveryState: NoRecoveryStateChange}}
			model[name]++
		default:
			name := anyKey(rng, model)
			recs = []Record{&RemoveTopicRecord{TopicID: ids[name]}}
			delete(model, name)
		}
		var err error
		if step%2 == 0 {
			im, _, err = im.ApplyAll(recs)
		} else {
			for _, rec := range recs {
				if im, _, err = im.Apply(rec); err != nil {
					break
				}
			}
		}
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if step%97 == 0 {
			history = append(history, kept{im, clone(model)})
		}
	}
	history = append(history, kept{im, model})
	for i, k := range history {
		checkTopics(t, fmt.Sprintf("image %d", i), k.im, k.model)
	}
	// Removing every topic gives an image equal, field by field, to the
	// empty one.
	var recs []Record
	for _, topic := range im.Topics() {
		recs = append(recs, &RemoveTopicRecord{TopicID: topic.ID})
	}
	empty, _, err := im.ApplyAll(recs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(empty, Image{}) {
		t.Errorf("an image with every topic removed differs from the empty image")
	}
	checkTopics(t, "the last image", im, model)
}

func anyKey(rng *rand.Rand, m map[string]int32) string {
	n := rng.IntN(len(m))
	for k := range m {
		if n == 0 {
			return k
		}
		n--
	}
	panic("unreachable")
}

func checkTopics(t *testing.T, what string, im Image, model map[string]int32) {
	t.Helper()
	if got := len(im.Topics()); got != len(model) {
		t.Fatalf("%s: %d topics, want %d", what, got, len(model))
	}
	for name, epoch := range model {
		topic, ok := im.TopicByName(name)
		if !ok {
			t.Fatalf("%s: topic %s missing", what, name)
		}
		if byID, ok := im.TopicByID(topic.ID); !ok || byID != topic {
			t.Fatalf("%s: topic %s not found by its id", what, name)
		}
		if got := topic.Partitions[0].LeaderEpoch; got != epoch {
			t.Fatalf("%s: topic %s at leader epoch %d, want %d", what, name, got, epoch)
		}
	}
}
