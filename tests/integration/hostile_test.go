//go:build linux

package integration

// Hostile input over real sockets (issue 8): byte streams no real client sends,
// each on its own connection, against a broker that a well-behaved franz-go
// producer keeps using between cases. Every case must end in a Kafka error code
// or a clean close (as Apache Kafka answers it); after every case the franz-go
// client produces without an error, and the broker's RSS peak during the case
// stays within a stated bound (array counts claiming 2^31 elements must not be
// allocated).
//
// A slowloris client trickles a request one byte at a time in parallel with the
// table, and TestHostileManyConnections opens 10,000 connections at once.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// hostileIdle is connections.max.idle.ms for the hostile-input broker: short,
	// so the slowloris case can check the idle close of a stalled partial frame.
	hostileIdle = 2 * time.Second
	// hostileCaseTimeout bounds how long one case waits for an answer or a close.
	hostileCaseTimeout = 5 * time.Second
	// hostileRSSSlack is the RSS growth (peak during a case over the RSS before the
	// case) every case must stay within, on top of what the case itself sends
	// (a frame the broker must buffer before it can judge it, up to twice over
	// while the framer grows its buffer).
	hostileRSSSlack = 48 << 20
	// slowlorisByteInterval is the slowloris' pace, a fifth of hostileIdle (1.6 s
	// to spare for a loaded machine); its 14-byte request then takes about 5 s
	// (the brief's "one byte a second, bounded to ~10 s", scaled to the idle
	// timeout so the case costs make test 7 s, not 12 s).
	slowlorisByteInterval = 400 * time.Millisecond
)

// ---- raw request bodies -----------------------------------------------------------

// wire is a byte slice with Kafka primitive appenders, for bodies kmsg cannot
// produce (lying counts, truncated fields).
type wire []byte

func (w wire) i8(v int8) wire    { return append(w, byte(v)) }
func (w wire) i16(v int16) wire  { return binary.BigEndian.AppendUint16(w, uint16(v)) }
func (w wire) i32(v int32) wire  { return binary.BigEndian.AppendUint32(w, uint32(v)) }
func (w wire) uv(v uint64) wire  { return binary.AppendUvarint(w, v) }
func (w wire) str(s string) wire { return append(w.i16(int16(len(s))), s...) }
func (w wire) cstr(s string) wire {
	return append(w.uv(uint64(len(s))+1), s...) // compact string: length+1
}
func (w wire) zeros(n int) wire { return append(w, make([]byte, n)...) }

// count appends an array length claiming n elements: int32 for classic
// versions, uvarint n+1 for flexible (compact) ones.
func (w wire) count(flexible bool, n int64) wire {
	if flexible {
		return w.uv(uint64(n + 1))
	}
	return w.i32(int32(n))
}

// rawRequestFrame builds a length-prefixed request: header v1 (v2 with an empty
// tagged-field section when kmsg says key/version is flexible), then body.
func rawRequestFrame(key, version int16, corr int32, clientID string, body []byte) []byte {
	h := wire(nil).i16(key).i16(version).i32(corr).str(clientID)
	if r := kmsg.RequestForKey(key); r != nil {
		r.SetVersion(version)
		if r.IsFlexible() && key != 18 || key == 18 && version >= 3 {
			h = h.uv(0)
		}
	}
	payload := append([]byte(h), body...)
	return append(be32(int32(len(payload))), payload...)
}

// kmsgFrame encodes req with client id clientID.
func kmsgFrame(req kmsg.Request, corr int32, clientID string) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID)).AppendRequest(nil, req, corr)
}

// ---- outcomes ---------------------------------------------------------------------

type hostileWant int

const (
	// wantClose: the broker closes the connection without answering.
	wantClose hostileWant = iota + 1
	// wantAnswer: the broker answers; check judges the answer.
	wantAnswer
	// wantCloseOrAnswer: either is a correct Kafka reaction (check judges an answer).
	wantCloseOrAnswer
)

func (w hostileWant) String() string {
	return map[hostileWant]string{wantClose: "a close", wantAnswer: "an answer", wantCloseOrAnswer: "a close or an answer"}[w]
}

// readOutcome reads the broker's reaction on conn: one response frame, or a close
// (EOF or ECONNRESET before any byte). Anything else (a timeout) is an error.
func readOutcome(conn net.Conn, timeout time.Duration) (payload []byte, closed bool, err error) {
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return nil, true, nil
		}
		if isTimeout(err) {
			return nil, false, fmt.Errorf("no answer and no close within %v", timeout)
		}
		return nil, false, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 256<<20 {
		return nil, false, fmt.Errorf("response frame length %d", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(conn, payload); err != nil {
		return nil, false, fmt.Errorf("response cut short: %w", err)
	}
	return payload, false, nil
}

// decodeAnswer splits payload for resp at version and decodes it.
func decodeAnswer(payload []byte, resp kmsg.Response, version int16) error {
	resp.SetVersion(version)
	_, body, err := splitResponse(payload, resp)
	if err != nil {
		return err
	}
	return resp.ReadFrom(body)
}

// codesIn fails unless every code is one of allowed.
func codesIn(what string, codes []int16, allowed ...int16) error {
	if len(codes) == 0 {
		return fmt.Errorf("%s: no error codes in the answer", what)
	}
	for _, c := range codes {
		ok := false
		for _, a := range allowed {
			ok = ok || c == a
		}
		if !ok {
			names := make([]string, len(allowed))
			for i, a := range allowed {
				names[i] = codeName(a)
			}
			return fmt.Errorf("%s: error %s, want one of %v", what, codeName(c), names)
		}
	}
	return nil
}

// hostileCase is one hostile exchange on a fresh connection.
type hostileCase struct {
	name string
	wire []byte
	// closeWrite half-closes the client side after writing (a truncated frame: the
	// length promised more bytes than ever come).
	closeWrite bool
	want       hostileWant
	// check judges an answer's payload; nil accepts any answer.
	check func(payload []byte) error
	// skip, if set, is why the case is skipped (a known broker bug).
	skip string
}

// ---- RSS sampling -----------------------------------------------------------------

// rssSampler polls the broker's RSS every 10 ms and keeps the peak since the last
// reset, and the overall peak.
type rssSampler struct {
	b        *Broker
	peak     atomic.Int64
	overall  atomic.Int64
	stop     chan struct{}
	finished sync.WaitGroup
}

func startRSSSampler(t *testing.T, b *Broker) *rssSampler {
	s := &rssSampler{b: b, stop: make(chan struct{})}
	s.reset()
	s.finished.Add(1)
	go func() {
		defer s.finished.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				s.sample()
			}
		}
	}()
	t.Cleanup(func() { close(s.stop); s.finished.Wait() })
	return s
}

func (s *rssSampler) sample() int64 {
	rss, err := s.b.RSS()
	if err != nil {
		return 0
	}
	for {
		p := s.peak.Load()
		if rss <= p || s.peak.CompareAndSwap(p, rss) {
			break
		}
	}
	for {
		p := s.overall.Load()
		if rss <= p || s.overall.CompareAndSwap(p, rss) {
			break
		}
	}
	return rss
}

// reset starts a new peak window at the current RSS, which it returns.
func (s *rssSampler) reset() int64 {
	rss, _ := s.b.RSS()
	s.peak.Store(rss)
	s.sample()
	return rss
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// ---- the cases --------------------------------------------------------------------

// produceBodyHead is a Produce body up to its topics array (v3+; flexible from v9):
// null transactional id, acks 1, timeout 1 s.
func produceBodyHead(flexible bool) wire {
	w := wire(nil)
	if flexible {
		w = w.uv(0) // null transactional id (compact)
	} else {
		w = w.i16(-1)
	}
	return w.i16(1).i32(1000)
}

// fetchBodyHead is a Fetch body up to its topics array (v4-v12 layout; session
// fields from v7).
func fetchBodyHead(version int16) wire {
	w := wire(nil).i32(-1).i32(100).i32(1).i32(1 << 20).i8(0) // replica, max wait, min/max bytes, isolation
	if version >= 7 {
		w = w.i32(0).i32(-1) // session id, epoch
	}
	return w
}

// countCase is a request whose body carries a lying array count.
type countCase struct {
	name    string
	key     int16
	version int16
	body    wire
}

// hostileCases builds the table against a broker that serves versions (from its
// ApiVersions answer); liesTopic exists with one partition.
func hostileCases(versions map[int16][2]int16, liesTopic string) []hostileCase {
	var cases []hostileCase
	add := func(c hostileCase) { cases = append(cases, c) }
	const big = 1<<31 - 1 // an array count claiming 2^31-1 elements
	var corr int32 = 77

	// Truncated frames: the length promises N bytes, the client sends fewer and
	// half-closes (or the header itself stops short).
	apiv := kmsgFrame(apiVersionsRequest(3), corr, testClientID)
	produce := kmsgFrame(produceRequest(9, 1, producePart{liesTopic, 0, plainBatch([]byte("never whole"))}), corr, testClientID)
	add(hostileCase{name: "truncated/length-only", wire: be32(100), closeWrite: true, want: wantClose})
	add(hostileCase{name: "truncated/half-length-prefix", wire: []byte{0, 0}, closeWrite: true, want: wantClose})
	add(hostileCase{name: "truncated/apiversions-missing-last-byte", wire: apiv[:len(apiv)-1], closeWrite: true, want: wantClose})
	add(hostileCase{name: "truncated/produce-half", wire: produce[:len(produce)/2], closeWrite: true, want: wantClose})
	add(hostileCase{name: "truncated/length-1MiB-body-1KiB", wire: append(be32(1<<20), make([]byte, 1024)...), closeWrite: true, want: wantClose})

	// Negative and huge lengths: closed on the length alone (not after waiting for
	// 2 GiB, not by allocating it).
	for _, n := range []int32{-1, -2, -1 << 31, 1<<31 - 1, 100<<20 + 1} {
		add(hostileCase{name: "length/" + strconv.Itoa(int(n)), wire: append(be32(n), make([]byte, 64)...), want: wantClose})
	}
	// A length at socket.request.max.bytes (the default 100 MiB) that never arrives:
	// the broker must not reserve 100 MiB up front. The connection stays open (it
	// is merely slow); the client gives up and closes.
	add(hostileCase{name: "length/100MiB-then-1KiB", wire: append(be32(100<<20), make([]byte, 1024)...), closeWrite: true, want: wantClose})

	// Array counts claiming 2^31-1 elements in small frames, classic and flexible.
	produceHead, fetchHead := produceBodyHead, fetchBodyHead
	countCases := []countCase{
		{"produce-v3-topics", 0, 3, produceHead(false).count(false, big).zeros(32)},
		{"produce-v9-topics", 0, 9, produceHead(true).count(true, big).zeros(32)},
		{"produce-v3-partitions", 0, 3, produceHead(false).count(false, 1).str(liesTopic).count(false, big).zeros(32)},
		{"produce-v9-partitions", 0, 9, produceHead(true).count(true, 1).cstr(liesTopic).count(true, big).zeros(32)},
		{"produce-v3-topics-negative", 0, 3, produceHead(false).count(false, -7).zeros(32)},
		{"fetch-v4-topics", 1, 4, fetchHead(4).count(false, big).zeros(32)},
		{"fetch-v12-topics", 1, 12, fetchHead(12).count(true, big).zeros(32)},
		{"fetch-v4-partitions", 1, 4, fetchHead(4).count(false, 1).str(liesTopic).count(false, big).zeros(32)},
		{"fetch-v11-forgotten", 1, 11, fetchHead(11).count(false, 0).count(false, big).zeros(32)},
		{"metadata-v1-topics", 3, 1, wire(nil).count(false, big).zeros(32)},
		{"metadata-v9-topics", 3, 9, wire(nil).count(true, big).zeros(32)},
		{"metadata-v4-topics-negative", 3, 4, wire(nil).count(false, -5).zeros(32)},
		{"createtopics-v2-topics", 19, 2, wire(nil).count(false, big).zeros(32)},
		{"createtopics-v5-topics", 19, 5, wire(nil).count(true, big).zeros(32)},
		{"createtopics-v2-assignments", 19, 2, wire(nil).count(false, 1).str("claims").i32(1).i16(1).count(false, big).zeros(32)},
		{"createtopics-v2-configs", 19, 2, wire(nil).count(false, 1).str("claims").i32(1).i16(1).count(false, 0).count(false, big).zeros(32)},
	}
	for _, cc := range countCases {
		add(hostileCase{
			name: "count-2^31/" + cc.name,
			wire: rawRequestFrame(cc.key, cc.version, corr, testClientID, cc.body),
			// Kafka closes on a body that does not parse; an answer with an error code
			// is acceptable too (a negative count read as an empty array).
			want: wantCloseOrAnswer,
		})
	}

	// Wrong versions: one above the highest served and -1 for every served API;
	// one below the lowest when that is above 0. Kafka closes the connection,
	// except ApiVersions, which answers v0 UNSUPPORTED_VERSION (KIP-511).
	keys := make([]int, 0, len(versions))
	for k := range versions {
		keys = append(keys, int(k))
	}
	sort.Ints(keys)
	for _, k := range keys {
		key := int16(k)
		vr := versions[key]
		bad := []int16{vr[1] + 1, -1}
		if vr[0] > 0 {
			bad = append(bad, vr[0]-1)
		}
		for _, v := range bad {
			c := hostileCase{
				name: fmt.Sprintf("version/%s-v%d", apiName(key), v),
				wire: rawRequestFrame(key, v, corr, testClientID, make([]byte, 16)),
				want: wantClose,
			}
			if key == 18 {
				c.want = wantAnswer
				c.check = func(payload []byte) error {
					resp := kmsg.NewPtrApiVersionsResponse()
					if err := decodeAnswer(payload, resp, 0); err != nil {
						return err
					}
					return codesIn("ApiVersions", []int16{resp.ErrorCode}, kerr.UnsupportedVersion.Code)
				}
			}
			add(c)
		}
	}
	// Unknown API keys (not served, or not Kafka's at all).
	for _, key := range []int16{4, 17, 36, 1000, -1} {
		if _, served := versions[key]; served {
			continue
		}
		add(hostileCase{name: fmt.Sprintf("version/unknown-key-%d", key), wire: rawRequestFrame(key, 0, corr, testClientID, make([]byte, 16)), want: wantClose})
	}

	// Invalid UTF-8 in the client id: Kafka does not validate it; the request is
	// served (or the connection closed, which is also sound).
	for _, id := range []string{"\xff\xfe\xfd", "bad\xc3\x28utf8", "nul\x00inside"} {
		add(hostileCase{
			name: fmt.Sprintf("client-id/%q/metadata", id),
			wire: kmsgFrame(metadataRequest(1), corr, id),
			want: wantCloseOrAnswer,
			check: func(payload []byte) error {
				return decodeAnswer(payload, kmsg.NewPtrMetadataResponse(), 1)
			},
		})
		add(hostileCase{
			name: fmt.Sprintf("client-id/%q/apiversions-v3-software-name", id),
			wire: kmsgFrame(&kmsg.ApiVersionsRequest{Version: 3, ClientSoftwareName: id, ClientSoftwareVersion: id}, corr, id),
			want: wantCloseOrAnswer,
			check: func(payload []byte) error {
				resp := kmsg.NewPtrApiVersionsResponse()
				if err := decodeAnswer(payload, resp, 3); err != nil {
					return err
				}
				// Kafka answers INVALID_REQUEST for a software name outside its pattern.
				return codesIn("ApiVersions", []int16{resp.ErrorCode}, 0, kerr.InvalidRequest.Code)
			},
		})
	}

	// Topic names a broker must refuse (INVALID_TOPIC_EXCEPTION), through every
	// door that can create or name a topic: Metadata with auto-creation,
	// CreateTopics, Produce.
	badNames := []string{"a/b", "..", ".", "../escape", "../../../../tmp/escape", "/abs", "a\x00b", "\x00", "\xff\xfe", "ok\xc3\x28", "tab\tname"}
	invalidTopic := kerr.InvalidTopicException.Code
	for _, name := range badNames {
		for _, v := range []int16{4, 12} {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = v
			req.AllowAutoTopicCreation = true
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, mt)
			add(hostileCase{
				name: fmt.Sprintf("topic-name/%q/metadata-v%d-autocreate", name, v),
				wire: kmsgFrame(req, corr, testClientID),
				want: wantAnswer,
				check: func(payload []byte) error {
					resp := kmsg.NewPtrMetadataResponse()
					if err := decodeAnswer(payload, resp, v); err != nil {
						return err
					}
					var codes []int16
					for _, t := range resp.Topics {
						codes = append(codes, t.ErrorCode)
					}
					return codesIn("Metadata topic", codes, invalidTopic)
				},
			})
		}
		for _, v := range []int16{4, 5} {
			req := kmsg.NewPtrCreateTopicsRequest()
			req.Version = v
			req.TimeoutMillis = 5000
			ct := kmsg.NewCreateTopicsRequestTopic()
			ct.Topic = name
			ct.NumPartitions = 1
			ct.ReplicationFactor = 1
			req.Topics = append(req.Topics, ct)
			add(hostileCase{
				name: fmt.Sprintf("topic-name/%q/createtopics-v%d", name, v),
				wire: kmsgFrame(req, corr, testClientID),
				want: wantAnswer,
				check: func(payload []byte) error {
					resp := kmsg.NewPtrCreateTopicsResponse()
					if err := decodeAnswer(payload, resp, v); err != nil {
						return err
					}
					var codes []int16
					for _, t := range resp.Topics {
						codes = append(codes, t.ErrorCode)
					}
					return codesIn("CreateTopics topic", codes, invalidTopic)
				},
			})
		}
		add(hostileCase{
			name: fmt.Sprintf("topic-name/%q/produce-v9", name),
			wire: kmsgFrame(produceRequest(9, -1, producePart{name, 0, plainBatch([]byte("x"))}), corr, testClientID),
			want: wantAnswer,
			check: func(payload []byte) error {
				resp := kmsg.NewPtrProduceResponse()
				if err := decodeAnswer(payload, resp, 9); err != nil {
					return err
				}
				var codes []int16
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						codes = append(codes, p.ErrorCode)
					}
				}
				// Kafka answers UNKNOWN_TOPIC_OR_PARTITION; ringbroker INVALID_TOPIC
				// (00_produce.go documents the difference).
				return codesIn("Produce partition", codes, invalidTopic, kerr.UnknownTopicOrPartition.Code)
			},
		})
	}

	// Produce of a batch whose record count lies (the CRC is recomputed so only
	// the count is wrong): refused with CORRUPT_MESSAGE or INVALID_RECORD.
	values := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
	for _, lie := range []struct {
		name  string
		count int32
	}{{"more", 4}, {"fewer", 2}, {"zero", 0}, {"negative", -1}, {"2^31-1", 1<<31 - 1}} {
		batch := rawBatch(batchSpec{producerID: -1, producerEpoch: -1, baseSequence: -1, values: values})
		binary.BigEndian.PutUint32(batch[57:], uint32(lie.count))
		binary.BigEndian.PutUint32(batch[17:], crc32.Checksum(batch[21:], castagnoli))
		for _, v := range []int16{3, 9} {
			add(hostileCase{
				name: fmt.Sprintf("record-count-lies/%s-v%d", lie.name, v),
				wire: kmsgFrame(produceRequest(v, -1, producePart{liesTopic, 0, batch}), corr, testClientID),
				want: wantAnswer,
				check: func(payload []byte) error {
					resp := kmsg.NewPtrProduceResponse()
					if err := decodeAnswer(payload, resp, v); err != nil {
						return err
					}
					var codes []int16
					for _, t := range resp.Topics {
						for _, p := range t.Partitions {
							codes = append(codes, p.ErrorCode)
						}
					}
					return codesIn("Produce partition", codes, kerr.CorruptMessage.Code, kerr.InvalidRecord.Code)
				},
			})
		}
	}
	return cases
}

// apiName is kmsg's name for key, or the number.
func apiName(key int16) string {
	if r := kmsg.RequestForKey(key); r != nil {
		return kmsg.NameForKey(key)
	}
	return strconv.Itoa(int(key))
}

// servedVersions asks the broker which versions it serves per API key.
func servedVersions(t *testing.T, addr string) map[int16][2]int16 {
	t.Helper()
	conn := dial(t, addr)
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := roundTrip(conn, apiVersionsRequest(3), resp, 1, rawTimeout); err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	out := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		out[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	return out
}

// TestHostileInput runs the hostile table on both backends while a slowloris
// trickles a request and a franz-go producer checks the broker after each case.
func TestHostileInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{
			"connections.max.idle.ms":   strconv.Itoa(int(hostileIdle / time.Millisecond)),
			"auto.create.topics.enable": "true",
		})
		const goodTopic, liesTopic = "hostile-good", "hostile-lies"
		createTopic(t, b.Addr, goodTopic, 1, nil)
		createTopic(t, b.Addr, liesTopic, 1, nil)
		good := newClient(t, b.Addr)
		var goodSent []sentRecord
		produceGood := func(what string) {
			t.Helper()
			r := sentRecord{partition: 0, value: recordValue(goodTopic, len(goodSent), 64, false)}
			goodSent = append(goodSent, r)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := good.ProduceSync(ctx, &kgo.Record{Topic: goodTopic, Value: r.value}).FirstErr(); err != nil {
				t.Fatalf("well-behaved franz-go producer after %s: %v", what, err)
			}
		}
		produceGood("start")
		parentBefore := dirNames(t, filepath.Dir(b.Dir))
		rss := startRSSSampler(t, b)
		rssStart := rss.reset()

		slow := startSlowloris(t, b.Addr)

		cases := hostileCases(servedVersions(t, b.Addr), liesTopic)
		var worst struct {
			name string
			grow int64
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if tc.skip != "" {
					t.Skip(tc.skip)
				}
				before := rss.reset()
				conn := dial(t, b.Addr)
				_ = conn.SetWriteDeadline(time.Now().Add(hostileCaseTimeout))
				_, werr := conn.Write(tc.wire) // the broker may close mid-write: judged below
				if tc.closeWrite {
					_ = conn.CloseWrite()
				}
				payload, closed, err := readOutcome(conn, hostileCaseTimeout)
				switch {
				case err != nil:
					t.Errorf("after %d bytes (% x...; write error %v): %v, want %v", len(tc.wire), head(tc.wire, 12), werr, err, tc.want)
				case closed && tc.want == wantAnswer:
					t.Errorf("connection closed, want an answer")
				case !closed && tc.want == wantClose:
					t.Errorf("answered %d bytes (% x...), want a close", len(payload), head(payload, 16))
				case !closed && tc.check != nil:
					if err := tc.check(payload); err != nil {
						t.Errorf("answer: %v", err)
					}
				}
				if closed {
					t.Logf("closed")
				} else if err == nil {
					t.Logf("answered %d bytes", len(payload))
				}
				conn.Close()
				if !b.Alive() {
					t.Fatalf("broker died")
				}
				produceGood(tc.name)
				peak := rss.peak.Load()
				grow := peak - before
				if grow > worst.grow {
					worst.name, worst.grow = tc.name, grow
				}
				if limit := int64(hostileRSSSlack + 2*len(tc.wire)); grow > limit {
					t.Errorf("broker RSS grew %s during the case (from %s to a peak of %s), want <= %s: something was allocated in proportion to what the input claims",
						mib(grow), mib(before), mib(peak), mib(limit))
				}
			})
		}

		slow.wait(t)

		// Nothing escaped the log dir, and only the expected topics exist in it.
		if after := dirNames(t, filepath.Dir(b.Dir)); strings.Join(after, ",") != strings.Join(parentBefore, ",") {
			t.Errorf("entries beside the log dir changed: before %q, after %q", parentBefore, after)
		}
		for _, name := range dirNames(t, b.Dir) {
			if strings.HasPrefix(name, goodTopic+"-") || strings.HasPrefix(name, liesTopic+"-") ||
				strings.HasPrefix(name, "__consumer_offsets") || !isDir(filepath.Join(b.Dir, name)) {
				continue
			}
			t.Errorf("unexpected partition directory %q in the log dir", name)
		}
		// The lies topic holds nothing: every lying batch was refused.
		if end := endOffsets(t, b.Addr, liesTopic); sumOffsets(end) != 0 {
			t.Errorf("%s high watermark %v after only refused batches, want 0", liesTopic, end)
		}
		got := consumeFranz(t, b.Addr, goodTopic, fromStart(1), len(goodSent))
		verifyRecords(t, "well-behaved producer between hostile cases", goodSent, got, nil)

		rssEnd, _ := b.RSS()
		t.Logf("%s hostile input: %d cases; broker RSS start %s, end %s, overall peak %s; largest growth in one case %s (%s)",
			backend, len(cases), mib(rssStart), mib(rssEnd), mib(rss.overall.Load()), mib(worst.grow), worst.name)
	})
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// ---- slowloris --------------------------------------------------------------------

// slowloris trickles an ApiVersions v0 request one byte every slowlorisByteInterval
// (14 bytes: ~5 s), expects it answered, then sends five bytes of a second request
// and stalls: the broker has no deadline for a frame to complete, only
// connections.max.idle.ms since the last byte received, so the stalled connection
// must be closed about hostileIdle after its last byte.
type slowloris struct {
	done chan error
	log  chan string
}

func startSlowloris(t *testing.T, addr string) *slowloris {
	s := &slowloris{done: make(chan error, 1), log: make(chan string, 8)}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("slowloris dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	req := wire(nil).i32(10).i16(18).i16(0).i32(4242).i16(-1) // ApiVersions v0, null client id
	go func() {
		s.done <- func() error {
			start := time.Now()
			for i := range req {
				if i > 0 {
					time.Sleep(slowlorisByteInterval)
				}
				_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := conn.Write(req[i : i+1]); err != nil {
					return fmt.Errorf("byte %d at %v: %v (the broker closed a connection that was still sending)", i, time.Since(start).Round(time.Millisecond), err)
				}
			}
			payload, closed, err := readOutcome(conn, 5*time.Second)
			if err != nil || closed {
				return fmt.Errorf("request trickled over %v: closed %v, %v (want an answer)", time.Since(start).Round(time.Millisecond), closed, err)
			}
			resp := kmsg.NewPtrApiVersionsResponse()
			if err := decodeAnswer(payload, resp, 0); err != nil || resp.ErrorCode != 0 {
				return fmt.Errorf("answer to the trickled request: %v, code %d", err, resp.ErrorCode)
			}
			s.log <- fmt.Sprintf("slowloris: a 14-byte request sent one byte per %v was answered after %v", slowlorisByteInterval, time.Since(start).Round(time.Millisecond))
			// Stall inside a frame.
			if _, err := conn.Write(wire(nil).i32(10).i8(0)); err != nil {
				return fmt.Errorf("partial frame: %v", err)
			}
			stalled := time.Now()
			if err := expectClosed(conn, hostileIdle+5*time.Second); err != nil {
				return fmt.Errorf("stalled mid-frame: %v (connections.max.idle.ms=%d)", err, hostileIdle/time.Millisecond)
			}
			took := time.Since(stalled)
			s.log <- fmt.Sprintf("slowloris: stalled mid-frame, closed by connections.max.idle.ms after %v (idle %v); no per-frame deadline exists, so one byte per < idle keeps a partial frame open indefinitely", took.Round(time.Millisecond), hostileIdle)
			if took < hostileIdle-100*time.Millisecond {
				return fmt.Errorf("stalled connection closed after %v, before connections.max.idle.ms %v", took, hostileIdle)
			}
			return nil
		}()
	}()
	return s
}

func (s *slowloris) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("slowloris: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Errorf("slowloris did not finish within 40 s")
	}
	for {
		select {
		case l := <-s.log:
			t.Log(l)
		default:
			return
		}
	}
}

// ---- 10,000 connections -------------------------------------------------------------

// manyConns is how many connections one client opens in TestHostileManyConnections.
const manyConns = 10_000

// TestHostileManyConnections: one client opens 10,000 connections (sending an
// ApiVersions request on every one); the broker keeps serving a franz-go producer
// and a probe with bounded latency, its RSS is reported, and once the client closes
// them all the broker's descriptors return to where they were.
func TestHostileManyConnections(t *testing.T) {
	raiseNoFile(t, manyConns+1000)
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		const topic = "many-conns"
		createTopic(t, b.Addr, topic, 1, nil)
		good := newClient(t, b.Addr)
		produceTo := func(what string) {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := good.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(what)}).FirstErr(); err != nil {
				t.Fatalf("franz-go produce %s: %v", what, err)
			}
		}
		produceTo("before")
		fdsBefore := countFDs(t, b.PID)
		rss := startRSSSampler(t, b)
		rssBefore := rss.reset()

		start := time.Now()
		conns := make([]*net.TCPConn, 0, manyConns)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		frameApiV := appendRequest(nil, apiVersionsRequest(3), 9)
		d := net.Dialer{Timeout: 5 * time.Second}
		for i := 0; i < manyConns; i++ {
			c, err := d.Dial("tcp", b.Addr)
			if err != nil {
				t.Fatalf("connection %d of %d: %v", i+1, manyConns, err)
			}
			tc := c.(*net.TCPConn)
			_ = tc.SetLinger(0) // close with RST: no TIME_WAIT eating the port range
			conns = append(conns, tc)
			if _, err := tc.Write(frameApiV); err != nil {
				t.Fatalf("request on connection %d: %v", i+1, err)
			}
		}
		opened := time.Since(start)
		for i, c := range conns {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := readFrame(c); err != nil {
				t.Fatalf("answer on connection %d of %d: %v", i+1, manyConns, err)
			}
		}
		allAnswered := time.Since(start)
		fdsOpen := countFDs(t, b.PID)
		rssOpen := rss.sample()

		// Responsiveness with 10,000 connections open.
		var lat []time.Duration
		probe := dial(t, b.Addr)
		for i := range 200 {
			t0 := time.Now()
			if err := apiVersionsOn(probe, int32(i), rawTimeout); err != nil {
				t.Fatalf("probe with %d connections open: %v", manyConns, err)
			}
			lat = append(lat, time.Since(t0))
		}
		sortDurations(lat)
		produceTo("with-10k-open")

		closeStart := time.Now()
		for _, c := range conns {
			c.Close()
		}
		conns = conns[:0]
		// The broker notices every close; its descriptors return to the start level.
		deadline := time.Now().Add(15 * time.Second)
		fdsAfter := countFDs(t, b.PID)
		for fdsAfter > fdsBefore+2 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			fdsAfter = countFDs(t, b.PID)
		}
		released := time.Since(closeStart)
		produceTo("after")
		rssAfter, _ := b.RSS()

		t.Logf("%s 10k connections: opened %d in %v, all answered after %v; broker fds %d -> %d -> %d (released in %v)",
			backend, manyConns, opened.Round(time.Millisecond), allAnswered.Round(time.Millisecond), fdsBefore, fdsOpen, fdsAfter, released.Round(time.Millisecond))
		t.Logf("%s 10k connections: probe p50 %v p99 %v max %v with them open", backend,
			percentile(lat, 0.5).Round(time.Microsecond), percentile(lat, 0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
		t.Logf("%s 10k connections: broker RSS before %s, with 10k open %s, peak %s, after closing %s (%.1f KiB per connection at peak)",
			backend, mib(rssBefore), mib(rssOpen), mib(rss.overall.Load()), mib(rssAfter), float64(rss.overall.Load()-rssBefore)/manyConns/1024)

		if fdsOpen < fdsBefore+manyConns {
			t.Errorf("broker holds %d descriptors with %d connections open (started with %d)", fdsOpen, manyConns, fdsBefore)
		}
		if fdsAfter > fdsBefore+2 {
			t.Errorf("broker holds %d descriptors 15 s after all %d connections closed, want ~%d", fdsAfter, manyConns, fdsBefore)
		}
		if p99 := percentile(lat, 0.99); p99 > 100*time.Millisecond {
			t.Errorf("probe p99 %v with %d idle connections open, want <= 100 ms", p99, manyConns)
		}
		// 10,000 idle connections must not cost more than ~40 KiB each.
		if grow := rss.overall.Load() - rssBefore; grow > manyConns*40<<10 {
			t.Errorf("broker RSS grew %s for %d idle connections, want <= %s", mib(grow), manyConns, mib(manyConns*40<<10))
		}
	})
}

// raiseNoFile raises this process's soft RLIMIT_NOFILE to at least n (up to the
// hard limit), for tests that open thousands of sockets.
func raiseNoFile(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Fatalf("RLIMIT_NOFILE hard limit %d < %d needed", lim.Max, n)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("raise RLIMIT_NOFILE to %d: %v", n, err)
	}
}

// countFDs counts the open descriptors of process pid.
func countFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("fds of %d: %v", pid, err)
	}
	return len(ents)
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}

// ---- array counts as large as the frame ---------------------------------------------

// amplifyFrameBytes is the frame size of the amplification cases: big enough that
// a decoder preallocating the claimed elements shows in RSS, small next to the
// default socket.request.max.bytes (100 MiB), which multiplies the same effect by 25.
const amplifyFrameBytes = 4 << 20

// amplifyBytesPerByteMax is how much broker memory one received byte of such a
// frame may cost at peak: the frame itself (twice while the framer grows it) plus
// the decoded elements that really arrived. Above it, an unauthenticated client
// with one socket.request.max.bytes (100 MiB) frame costs the broker gigabytes.
const amplifyBytesPerByteMax = 8

// amplifyCountDivisors: a generated row sends one frame per divisor d, with the
// count at its array position set to (bytes after the count)/d, so that a
// decoder bounding counts by d bytes per element is met at its limit.
var amplifyCountDivisors = []int{1, 2, 3, 4, 8}

// amplifyServedBytesPerByteMax is amplifyBytesPerByteMax for the generated
// rows: at count = rest/d, zeros often do make whole (empty) elements, so the
// request decodes and is served, and its answer has as many entries. Decoding
// costs at most 32 heap bytes per byte (broker.go, "Decode bound"), and Go's
// heap goal lets garbage reach the live size again, so RSS may reach twice
// that. Before kmsg v1.15.1 rows reached 75-103 bytes per byte; with it the
// worst measured is 48 (OffsetFetch v9).
const amplifyServedBytesPerByteMax = 64

// TestHostileArrayCountAmplification: a frame of zeros whose array count is as
// large as the decoder may accept (one element per byte, or per the smallest
// element size) still fails part way, since zeros do not make whole elements.
// A decoder that preallocates count elements allocates (element size) bytes
// per byte received before it fails. Every API key the broker serves has a row
// (at its highest version, at the array position whose elements are largest
// for their wire size); the peak RSS is the kernel's high-water mark (VmHWM),
// reset before the row, so no peak is missed. Each row runs on a fresh broker
// so that heap freed by one row does not hide the next one's growth.
func TestHostileArrayCountAmplification(t *testing.T) {
	const n = amplifyFrameBytes
	type row struct {
		name   string
		key    int16
		bodies []wire
		// bug, if set, names a known broker bug: the case is skipped unless
		// RINGBROKER_IT_KNOWN_BUGS=1.
		bug     string
		version int16
		perByte int // RSS bytes per frame byte allowed (0: amplifyBytesPerByteMax)
	}
	rows := []row{
		{name: "produce-v3", key: 0, version: 3, bodies: []wire{produceBodyHead(false).count(false, n-12).zeros(n - 12)}},
		{name: "produce-v9", key: 0, version: 9, bodies: []wire{produceBodyHead(true).count(true, n-12).zeros(n - 12)}},
		{name: "metadata-v1", key: 3, version: 1, bodies: []wire{wire(nil).count(false, n-4).zeros(n - 4)}},
		{name: "fetch-v4", key: 1, version: 4, bodies: []wire{fetchBodyHead(4).count(false, n-21).zeros(n - 21)}},
		{name: "createtopics-v2", key: 19, version: 2, bodies: []wire{wire(nil).count(false, n-4).zeros(n - 4)}},
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		rows := rows
		{
			b := startBroker(t, backend, nil)
			for _, ar := range amplifyRowsFor(servedVersions(t, b.Addr)) {
				r := row{name: "all-keys/" + ar.name, key: ar.key, version: ar.version, perByte: amplifyServedBytesPerByteMax}
				for _, d := range amplifyCountDivisors {
					r.bodies = append(r.bodies, ar.body(ar.rest/d))
				}
				rows = append(rows, r)
			}
			b.Stop(t)
		}
		for _, tc := range rows {
			t.Run(tc.name, func(t *testing.T) {
				if tc.bug != "" && os.Getenv("RINGBROKER_IT_KNOWN_BUGS") != "1" {
					t.Skip(tc.bug)
				}
				// Each case has a broker of its own and measures that
				// process's peak RSS: the cases run side by side (most of
				// a case is the daemon starting and stopping).
				t.Parallel()
				b := startBroker(t, backend, nil)
				if err := b.resetPeakRSS(); err != nil {
					t.Fatalf("reset the broker's peak RSS: %v", err)
				}
				before, err := b.RSS()
				if err != nil {
					t.Fatal(err)
				}
				frameMax := 0
				for i, body := range tc.bodies {
					conn := dial(t, b.Addr)
					frame := rawRequestFrame(tc.key, tc.version, 5, testClientID, body)
					frameMax = max(frameMax, len(frame))
					_ = conn.SetWriteDeadline(time.Now().Add(hostileCaseTimeout))
					_, werr := conn.Write(frame)
					if _, _, err := readOutcome(conn, hostileCaseTimeout); err != nil {
						t.Errorf("frame %d, after %d bytes (write error %v): %v, want a close or an answer", i, len(frame), werr, err)
					}
					conn.Close()
				}
				if err := probeApiVersions(b.Addr, rawTimeout); err != nil {
					t.Fatalf("broker after the case: %v", err)
				}
				peak, err := b.peakRSS()
				if err != nil {
					t.Fatal(err)
				}
				grow := peak - before
				perByte := amplifyBytesPerByteMax
				if tc.perByte != 0 {
					perByte = tc.perByte
				}
				limit := int64(hostileRSSSlack + perByte*frameMax)
				t.Logf("%s %s: %d frame(s) of up to %d bytes: broker RSS %s -> peak %s (+%s, %.1f bytes per byte of the largest frame)",
					backend, tc.name, len(tc.bodies), frameMax, mib(before), mib(peak), mib(grow), float64(grow)/float64(frameMax))
				if grow > limit {
					t.Errorf("broker RSS grew %s for %s frames, want <= %s: the decoder allocates what the array count claims, not what arrived",
						mib(grow), mib(int64(frameMax)), mib(limit))
				}
			})
		}
	})
}
