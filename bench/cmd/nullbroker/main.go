// Command nullbroker runs the bench/ null broker: a Kafka-wire broker that
// answers ApiVersions, Metadata, InitProducerId, Produce, CreateTopics,
// ListOffsets and Fetch without storing records (Fetch serves copies of one
// prebuilt batch per partition), the client-bound ceiling for benchmarks.
//
//	nullbroker [--listen 127.0.0.1:9092] [--partitions 1] [--node-id 0]
//
// It prints "listening on ADDR" once it accepts connections and stops on
// SIGINT/SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ringbroker/ringbroker/bench/nullbroker"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9092", "listen address")
	partitions := flag.Int("partitions", 1, "partitions of auto-created topics")
	nodeID := flag.Int("node-id", 0, "broker id reported in Metadata")
	flag.Parse()
	s, err := nullbroker.Listen(nullbroker.Options{
		Addr:              *listen,
		NodeID:            int32(*nodeID),
		DefaultPartitions: int32(*partitions),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "nullbroker:", err)
		os.Exit(1)
	}
	fmt.Println("listening on", s.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	s.Close()
}
