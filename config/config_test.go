package config

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func parse(t *testing.T, text string) (*Config, []string) {
	t.Helper()
	c, warns, err := Parse(strings.NewReader(text), "test.properties")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c, warns
}

func TestDefaults(t *testing.T) {
	c := Default()
	want := []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}}
	if !reflect.DeepEqual(c.Listeners, want) || !reflect.DeepEqual(c.AdvertisedListeners, want) {
		t.Errorf("listeners %v advertised %v", c.Listeners, c.AdvertisedListeners)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"LogDirs", c.LogDirs, []string{"./data"}},
		{"NodeID", c.NodeID, int32(0)},
		{"SocketRequestMaxBytes", c.SocketRequestMaxBytes, int32(104857600)},
		{"QueuedMaxRequestBytes", c.QueuedMaxRequestBytes, int64(268435456)},
		{"ConnectionsMaxIdleMs", c.ConnectionsMaxIdleMs, int64(600000)},
		{"MaxConnections", c.MaxConnections, 2147483647},
		{"RingCount", c.RingCount, 0},
		{"LogFlushOffsetCheckpointIntervalMs", c.LogFlushOffsetCheckpointIntervalMs, int64(60000)},
		{"AppendPendingMaxBytes", c.AppendPendingMaxBytes, int64(67108864)},
		{"RingEntries", c.RingEntries, 512},
		{"RingRecvBufferBytes", c.RingRecvBufferBytes, 65536},
		{"RingRecvBuffers", c.RingRecvBuffers, 256},
		{"ConnMaxInflightRequests", c.ConnMaxInflightRequests, 1024},
		{"ConnMaxInflightBytes", c.ConnMaxInflightBytes, int64(16777216)},
		{"IOBackend", c.IOBackend, "auto"},
		{"LogRetentionMs", c.LogRetentionMs, int64(168 * 3600000)},
		{"LogRollMs", c.LogRollMs, int64(168 * 3600000)},
		{"MessageMaxBytes", c.MessageMaxBytes, int32(1048588)},
		{"AutoCreateTopicsEnable", c.AutoCreateTopicsEnable, true},
		{"FetchZeroCopy", c.FetchZeroCopy, true},
		{"MetricsListener", c.MetricsListener, "127.0.0.1:9644"},
		{"OffsetsTopicNumPartitions", c.OffsetsTopicNumPartitions, int32(50)},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if c.Rings() < 1 {
		t.Errorf("Rings() = %d", c.Rings())
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	if c.Source("ring.count") != "default" {
		t.Errorf("source %q", c.Source("ring.count"))
	}
}

func TestParseSourcesAndValues(t *testing.T) {
	c, warns := parse(t, `# comment
listeners = PLAINTEXT://[::1]:0, INTERNAL://0.0.0.0:19092
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092,INTERNAL://broker.local:19092
log.dirs=/a, /b
ring.count = 3
ring.sqpoll = TRUE
io.backend=portable
queued.max.request.bytes=1000
log.cleanup.policy=compact,delete
metrics.listener=
`)
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	if want := []Listener{{"PLAINTEXT", "::1", 0}, {"INTERNAL", "0.0.0.0", 19092}}; !reflect.DeepEqual(c.Listeners, want) {
		t.Errorf("Listeners = %v", c.Listeners)
	}
	if c.Listeners[0].Addr() != "[::1]:0" || c.Listeners[1].String() != "INTERNAL://0.0.0.0:19092" {
		t.Errorf("Addr %q String %q", c.Listeners[0].Addr(), c.Listeners[1].String())
	}
	if c.AdvertisedListeners[1].Host != "broker.local" {
		t.Errorf("advertised %v", c.AdvertisedListeners)
	}
	if !reflect.DeepEqual(c.LogDirs, []string{"/a", "/b"}) || c.RingCount != 3 || c.Rings() != 3 || !c.RingSQPoll ||
		c.IOBackend != "portable" || c.QueuedMaxRequestBytes != 1000 || c.MetricsListener != "" ||
		!reflect.DeepEqual(c.LogCleanupPolicy, []string{"compact", "delete"}) {
		t.Errorf("values: %+v", c)
	}
	if s := c.Source("ring.count"); s != "test.properties:6" {
		t.Errorf("source of ring.count = %q", s)
	}
	if err := c.Set("ring.count", "1"); err != nil {
		t.Fatal(err)
	}
	if c.RingCount != 1 || c.Source("ring.count") != "override" {
		t.Errorf("after Set: %d %q", c.RingCount, c.Source("ring.count"))
	}
}

func TestWarnings(t *testing.T) {
	_, warns := parse(t, "ring.cuont=2\nfoo.bar=1\nnum.io.threads=8\nnum.partitions=2\nnum.partitions=3\n")
	joined := strings.Join(warns, "\n")
	for _, want := range []string{
		"test.properties:1: unknown key ring.cuont ignored (did you mean ring.count?)",
		"test.properties:2: unknown key foo.bar ignored",
		"test.properties:5: key num.partitions also set on line 4",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("missing warning %q in:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "num.io.threads") {
		t.Errorf("ignored Kafka key warned: %s", joined)
	}
	if len(warns) != 3 {
		t.Errorf("got %d warnings: %s", len(warns), joined)
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ring.count=abc", "test.properties:1: ring.count=\"abc\": not an integer"},
		{"x=1\nring.entries=500", "test.properties:2: ring.entries=\"500\": 500 is not a power of two"},
		{"ring.recv.buffers=0", "between 1 and 32768"},
		{"socket.request.max.bytes=0", "socket.request.max.bytes=\"0\": must be between 1 and"},
		{"socket.request.max.bytes=3000000000", "between 1 and 2147483647"},
		{"ring.sqpoll=yes", "ring.sqpoll=\"yes\": must be true or false"},
		{"io.backend=epoll", "must be one of auto, uring, portable"},
		{"listeners=localhost:9092", "is not NAME://host:port"},
		{"listeners=PLAINTEXT://localhost:99999", "is not 0..65535"},
		{"listeners=PLAINTEXT://localhost", "missing port"},
		{"listeners=", "at least one listener"},
		{"listeners=SSL://:9093", "only PEM key stores are served"},
		{"listeners=SASL_PLAINTEXT://:9093", "SASL mechanism GSSAPI is not served"},
		{"listeners=SASL_PLAINTEXT://:9093\nsasl.enabled.mechanisms=OAUTHBEARER", "sasl.oauthbearer.jwks.endpoint.url is not set"},
		{"sasl.oauthbearer.jwks.endpoint.url=https://idp/keys", "only file: URLs and paths are served"},
		{"listeners=SASL_PLAINTEXT://:9093\nsasl.enabled.mechanisms=OAUTHBEARER\nlistener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class=com.example.Mine", "unknown validator com.example.Mine"},
		{"listeners=SASL_PLAINTEXT://:9093\nsasl.enabled.mechanisms=PLAIN", "listener.name.sasl_plaintext.plain.sasl.jaas.config is not set"},
		{"listeners=SASL_PLAINTEXT://:9093\nlistener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN\nlistener.name.sasl_plaintext.plain.sasl.jaas.config=x required;", "login module x, want org.apache.kafka.common.security.plain.PlainLoginModule"},
		{"listener.name.sasl_plaintext.plain.sasl.jaas.config=x required user_a=\"unterminated;", "unterminated quoted value"},
		{"listener.name.other.sasl.enabled.mechanisms=PLAIN", "no listener named OTHER"},
		{"authorizer.class.name=kafka.security.authorizer.AclAuthorizer", "ZooKeeper's authorizer"},
		{"super.users=admin", "super.users: expected a string in format principalType:principalName"},
		{"listeners=FOO://:9093", "listener FOO has no entry in listener.security.protocol.map"},
		{"listeners=PLAINTEXT://:1,PLAINTEXT://:2", "appears twice"},
		{"advertised.listeners=PLAINTEXT://0.0.0.0:9092", "non-routable"},
		{"advertised.listeners=OTHER://h:9092", "OTHER is not in listeners"},
		{"log.dirs=", "at least one directory"},
		{"log.dirs=/a,,/b", "empty directory"},
		{"default.replication.factor=3", "a single node holds one replica"},
		{"log.message.timestamp.type=createtime", "must be one of CreateTime, LogAppendTime"},
		{"compression.type=brotli", "must be one of producer"},
		{"group.min.session.timeout.ms=10\ngroup.max.session.timeout.ms=5", "group.min.session.timeout.ms=10 is above"},
		{"node.id=1\nbroker.id=2", "test.properties:2: broker.id=2 conflicts with node.id=1 (test.properties:1)"},
		{"metrics.listener=nocolon", "metrics.listener=\"nocolon\": not host:port"},
		{"log.retention.ms=1\nlog.retention.hours=x", "log.retention.hours=\"x\": not an integer"},
		{"a=\\u00zz", "test.properties: line 1: key \"a\": malformed"},
		{"log.cleanup.policy=delete,archive", "\"archive\" is not delete or compact"},
		{"log.segment.bytes=14", "log.segment.bytes=14 is below log.segment.bytes.min=1048576"},
		{"log.segment.bytes=1048575", "is below log.segment.bytes.min"},
		{"log.segment.bytes.min=4096\nlog.segment.bytes=2048", "log.segment.bytes=2048 is below log.segment.bytes.min=4096"},
		{"log.roll.ms=0", "log.roll.ms=\"0\": must be at least 1"},
		{"log.roll.hours=0", "log.roll.hours=\"0\""},
		{"log.message.timestamp.after.max.ms=-1", "log.message.timestamp.after.max.ms=\"-1\""},
		{"log.message.timestamp.before.max.ms=-1", "log.message.timestamp.before.max.ms=\"-1\""},
		{"append.pending.max.bytes=0", "append.pending.max.bytes=\"0\": must be at least 1"},
		{"log.flush.offset.checkpoint.interval.ms=0", "log.flush.offset.checkpoint.interval.ms=\"0\": must be between 1 and"},
	}
	for _, tt := range tests {
		_, _, err := Parse(strings.NewReader(tt.in), "test.properties")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"log.retention.hours=1", 3600000},
		{"log.retention.minutes=2", 120000},
		{"log.retention.hours=1\nlog.retention.minutes=2", 120000},
		{"log.retention.minutes=2\nlog.retention.hours=1", 120000},
		{"log.retention.ms=5\nlog.retention.hours=1", 5},
		{"log.retention.hours=1\nlog.retention.ms=5\nlog.retention.minutes=9", 5},
		{"log.retention.hours=-1", -1},
		{"log.retention.minutes=-5", -1},
	}
	for _, tt := range tests {
		c, _ := parse(t, tt.in)
		if c.LogRetentionMs != tt.want {
			t.Errorf("%q: LogRetentionMs = %d, want %d", tt.in, c.LogRetentionMs, tt.want)
		}
	}
	c, warns := parse(t, "log.retention.ms=5\nlog.retention.hours=1\nlog.roll.hours=2\nlog.dir=/x\n")
	if len(warns) != 1 || !strings.Contains(warns[0], "log.retention.hours has no effect: log.retention.ms (test.properties:1) takes precedence") {
		t.Errorf("warnings %v", warns)
	}
	if c.LogRollMs != 7200000 || !reflect.DeepEqual(c.LogDirs, []string{"/x"}) {
		t.Errorf("roll %d dirs %v", c.LogRollMs, c.LogDirs)
	}
	if s := c.Source("log.roll.ms"); s != "test.properties:3 as log.roll.hours" {
		t.Errorf("source %q", s)
	}
	// An override beats a higher-precedence key from the file.
	if err := c.Set("log.retention.hours", "2"); err != nil {
		t.Fatal(err)
	}
	if c.LogRetentionMs != 7200000 {
		t.Errorf("override: LogRetentionMs = %d", c.LogRetentionMs)
	}
	// broker.id equal to node.id is fine.
	c, _ = parse(t, "broker.id=4\nnode.id=4")
	if c.NodeID != 4 {
		t.Errorf("NodeID %d", c.NodeID)
	}
}

func TestAdvertisedDerivedFromListeners(t *testing.T) {
	old := hostname
	hostname = func() (string, error) { return "broker-7.example", nil }
	defer func() { hostname = old }()
	c, _ := parse(t, "listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\nlistener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT")
	if want := []Listener{{"PLAINTEXT", "", 9092}}; !reflect.DeepEqual(c.Listeners, want) {
		t.Errorf("controller listener should not be served: %v", c.Listeners)
	}
	if want := []Listener{{"PLAINTEXT", "broker-7.example", 9092}}; !reflect.DeepEqual(c.AdvertisedListeners, want) {
		t.Errorf("advertised %v", c.AdvertisedListeners)
	}
	// Set on listeners re-derives advertised.
	if err := c.Set("listeners", "PLAINTEXT://10.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if c.AdvertisedListeners[0].Host != "10.0.0.1" || c.AdvertisedListeners[0].Port != 1 {
		t.Errorf("advertised after Set %v", c.AdvertisedListeners)
	}
}

func TestSetErrors(t *testing.T) {
	c := Default()
	if err := c.Set("ring.cout", "1"); err == nil || !strings.Contains(err.Error(), "did you mean ring.count") {
		t.Errorf("unknown key: %v", err)
	}
	if err := c.Set("num.io.threads", "8"); err != nil {
		t.Errorf("ignored key: %v", err)
	}
	if err := c.Set("ring.entries", "3"); err == nil {
		t.Error("bad value accepted")
	}
	var out bytes.Buffer
	c.Print(&out)
	if !strings.Contains(out.String(), "# ignored: num.io.threads=8 (override)") {
		t.Errorf("Print should list ignored keys:\n%s", out.String())
	}
}

func TestKafkaFileLoadsCleanly(t *testing.T) {
	c, warns, err := Load(filepath.Join("testdata", "kraft-server.properties"))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	if c.NodeID != 1 || len(c.Listeners) != 1 || c.Listeners[0].Port != 9092 || c.LogDirs[0] != "/tmp/kraft-combined-logs" {
		t.Errorf("config %+v", c)
	}
}

func TestLoad(t *testing.T) {
	c, warns, err := Load("")
	if err != nil || warns != nil || c.IOBackend != "auto" {
		t.Fatalf("Load(\"\"): %v %v", err, warns)
	}
	if _, _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
	p := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(p, []byte("ring.count=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _, err = Load(p)
	if err != nil || c.RingCount != 2 || c.Source("ring.count") != p+":1" {
		t.Fatalf("Load: %v %d %q", err, c.RingCount, c.Source("ring.count"))
	}
}

func TestPrintRoundTrip(t *testing.T) {
	c, _ := parse(t, "listeners=PLAINTEXT://[::1]:0\nlog.dirs=/a b/c,/d\\u00e9\nlog.retention.hours=3\nnum.io.threads=4\nlog.retention.ms=9\n")
	var out bytes.Buffer
	c.Print(&out)
	text := out.String()
	for _, want := range []string{
		"# test.properties:5\nlog.retention.ms=9\n",
		"\nring.count=0\n",
		"# shadowed: log.retention.hours=3 (test.properties:3) shadowed by log.retention.ms",
		"# ignored: num.io.threads=4 (test.properties:4)",
		"log.dirs=/a b/c,/dé\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Print output lacks %q:\n%s", want, text)
		}
	}
	c2, warns, err := Parse(strings.NewReader(text), "printed")
	if err != nil || len(warns) != 0 {
		t.Fatalf("printed config: %v %v", err, warns)
	}
	if a, b := effective(c), effective(c2); !reflect.DeepEqual(a, b) {
		t.Errorf("round trip differs:\n%v\n%v", a, b)
	}
}

func TestMarkdownCoversEveryKey(t *testing.T) {
	var out bytes.Buffer
	Markdown(&out)
	for i := range specs {
		if specs[i].doc == "" {
			t.Errorf("%s has no doc", specs[i].name)
		}
		if !strings.Contains(out.String(), "| `"+specs[i].name+"`") {
			t.Errorf("%s missing from Markdown", specs[i].name)
		}
	}
	for k := range ignoredKeys {
		if lookup(k) != nil {
			t.Errorf("%s is both a key and ignored", k)
		}
	}
}

// Segment and timestamp bounds: Kafka 4's defaults, and the floor an
// operator may lower for tests.
func TestSegmentAndTimestampBounds(t *testing.T) {
	c, _ := parse(t, "")
	if c.LogSegmentBytesMin != 1048576 || c.LogMessageTimestampAfterMaxMs != 3600000 || c.LogMessageTimestampBeforeMaxMs != math.MaxInt64 {
		t.Fatalf("defaults: segment floor %d, after %d, before %d", c.LogSegmentBytesMin, c.LogMessageTimestampAfterMaxMs, c.LogMessageTimestampBeforeMaxMs)
	}
	c, _ = parse(t, "log.segment.bytes.min=16384\nlog.segment.bytes=16384\nlog.message.timestamp.after.max.ms=5000")
	if c.LogSegmentBytes != 16384 || c.LogMessageTimestampAfterMaxMs != 5000 {
		t.Fatalf("lowered floor: segment.bytes %d, after %d", c.LogSegmentBytes, c.LogMessageTimestampAfterMaxMs)
	}
}

// TestDocsMatchKeyTable: docs/CONFIG.md is the generator's output, byte for
// byte. After changing a key: go run ./config/keydoc -w
func TestDocsMatchKeyTable(t *testing.T) {
	committed, err := os.ReadFile(filepath.Join("..", DocPath))
	if err != nil {
		t.Fatal(err)
	}
	var generated bytes.Buffer
	Markdown(&generated)
	if bytes.Equal(committed, generated.Bytes()) {
		return
	}
	want, got := strings.Split(generated.String(), "\n"), strings.Split(string(committed), "\n")
	for i := 0; i < max(len(want), len(got)); i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Fatalf("%s differs from the key table at line %d (run go run ./config/keydoc -w):\ncommitted: %s\ngenerated: %s", DocPath, i+1, g, w)
		}
	}
}
