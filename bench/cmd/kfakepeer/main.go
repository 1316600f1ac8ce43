// Command kfakepeer runs franz-go's in-memory fake Kafka cluster
// (github.com/twmb/franz-go/pkg/kfake) as a benchmark peer: a broker that
// keeps every record in memory, writes nothing to disk and syncs nothing.
// It is NOT a Kafka broker to compare durability or features with; bench/
// uses it only as an in-memory reference beside ringbrokerd, for issue 20's
// goal 1d (Kafka's Java producer perf tool at 50,000 records/s: ringbrokerd's
// p99 within 2x of this in-memory peer's p99 in the same run). Tables label
// it "kfake-inmemory".
//
//	kfakepeer [--listen 127.0.0.1:9092] [--partitions 1]
//
// One broker, listening on 127.0.0.1 only (kfake binds there); topics are
// auto-created with --partitions partitions. It prints "listening on ADDR"
// once it accepts connections and stops on SIGINT/SIGTERM.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9092", "listen address (the host must be 127.0.0.1)")
	partitions := flag.Int("partitions", 1, "partitions of auto-created topics")
	flag.Parse()
	host, portText, err := net.SplitHostPort(*listen)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil || host != "127.0.0.1" {
		fmt.Fprintf(os.Stderr, "kfakepeer: --listen %q: want 127.0.0.1:PORT (kfake listens on 127.0.0.1)\n", *listen)
		os.Exit(2)
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(*partitions),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfakepeer:", err)
		os.Exit(1)
	}
	fmt.Println("listening on", c.ListenAddrs()[0], "(kfake, in-memory)")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	c.Close()
}
