// Package nullbroker is a Kafka-wire broker that stores nothing: the
// client-bound ceiling that bench/ measures every real broker against.
//
// It answers ApiVersions, Metadata, InitProducerId, Produce, CreateTopics,
// ListOffsets and Fetch.
// Any topic exists (auto-created on Metadata or Produce with
// Options.DefaultPartitions partitions, or with the count CreateTopics asks
// for), the leader of every partition is this broker, and Produce assigns
// offsets by counting records per partition without looking inside the
// records: a batch's record count is read from its header
// (lastOffsetDelta+1), so the cost per request does not grow with the
// records it carries. acks=0 gets no response, as in Kafka. Fetch serves
// every produced offset from memory as copies of one prebuilt batch per
// partition (fetch.go), so a consumer reads as many records, of the sizes
// produced, as a real broker would send it.
//
// Concurrency: one goroutine per connection reads a frame, answers it and
// writes the response into a buffered writer that is flushed whenever no
// further request is already buffered, so pipelined requests are answered in
// order and in as few writes as the client allows. Topic state is shared by
// all connections under Server.mu; per-partition offsets are atomics.
package nullbroker

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka API keys served here.
const (
	keyProduce        = 0
	keyFetch          = 1
	keyListOffsets    = 2
	keyMetadata       = 3
	keyAPIVersions    = 18
	keyCreateTopics   = 19
	keyInitProducerID = 22
)

// Kafka error codes used here.
const (
	errUnknownTopicOrPartition = 3
	errUnsupportedVersion      = 35
	errTopicAlreadyExists      = 36
	errInvalidPartitions       = 37
)

// apiRange is one served API with its version range and the first version
// that uses the flexible (tagged-field) request header.
type apiRange struct {
	key, min, max, flexibleFrom int16
}

// served lists the APIs and versions advertised in ApiVersions. Produce
// stops at v11 because v12+ (Kafka 4.1) changes nothing a benchmark needs and
// v13 addresses topics by id, and Fetch stops at v12 for the same reason;
// the rest match what kmsg encodes.
var served = []apiRange{
	{keyProduce, 3, 11, 9},
	{keyFetch, 4, 12, 12},
	{keyListOffsets, 1, 7, 6},
	{keyMetadata, 0, 12, 9},
	{keyAPIVersions, 0, 4, 3},
	{keyCreateTopics, 0, 7, 5},
	{keyInitProducerID, 0, 5, 2},
}

func lookup(key int16) (apiRange, bool) {
	for _, a := range served {
		if a.key == key {
			return a, true
		}
	}
	return apiRange{}, false
}

// maxFrameBytes bounds a request frame, as socket.request.max.bytes does.
const maxFrameBytes = 100 << 20

// Options configures a null broker.
type Options struct {
	// Addr is the listen address, e.g. "127.0.0.1:0".
	Addr string
	// NodeID is the broker id reported in Metadata (default 0).
	NodeID int32
	// DefaultPartitions is the partition count of auto-created topics
	// (default 1, Kafka's num.partitions default).
	DefaultPartitions int32
}

// Server is a running null broker.
type Server struct {
	opts Options
	ln   net.Listener
	host string
	port int32

	mu     sync.Mutex // guards topics and conns
	topics map[string]*topic
	conns  map[net.Conn]struct{}
	closed bool

	producerID atomic.Int64
	wg         sync.WaitGroup
	done       chan struct{} // closed by Close: ends Fetch long polls
}

// topic is one topic's state. Its partitions slice never changes after
// creation, so readers may use it without Server.mu.
type topic struct {
	id         [16]byte
	partitions []atomic.Int64 // next offset of each partition
	// templates holds each partition's prebuilt batch for Fetch (nil
	// until an uncompressed batch was produced to it).
	templates []atomic.Pointer[template]
}

// Listen starts a null broker on opts.Addr and serves until Close.
func Listen(opts Options) (*Server, error) {
	if opts.DefaultPartitions <= 0 {
		opts.DefaultPartitions = 1
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, err
	}
	host, portText, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portText)
	s := &Server{
		opts:   opts,
		ln:     ln,
		host:   host,
		port:   int32(port),
		topics: make(map[string]*topic),
		conns:  make(map[net.Conn]struct{}),
		done:   make(chan struct{}),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr is the address the broker listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for their
// goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		close(s.done)
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// Offsets returns the next offset of each partition of the topic (nil if it
// does not exist): the number of records produced to it.
func (s *Server) Offsets(name string) []int64 {
	s.mu.Lock()
	t := s.topics[name]
	s.mu.Unlock()
	if t == nil {
		return nil
	}
	out := make([]int64, len(t.partitions))
	for i := range t.partitions {
		out[i] = t.partitions[i].Load()
	}
	return out
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// getTopic returns the topic, creating it with partitions partitions when
// create is set and it does not exist.
func (s *Server) getTopic(name string, create bool, partitions int32) (t *topic, created bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t = s.topics[name]; t != nil || !create {
		return t, false
	}
	if partitions <= 0 {
		partitions = s.opts.DefaultPartitions
	}
	t = &topic{partitions: make([]atomic.Int64, partitions), templates: make([]atomic.Pointer[template], partitions)}
	rand.Read(t.id[:])
	// Clone: Produce decodes names unsafely, aliasing the reused frame.
	s.topics[strings.Clone(name)] = t
	return t, true
}

// conn is the per-connection state: reused buffers and request structs.
// Owned by the connection's goroutine.
type conn struct {
	s       *Server
	frame   []byte
	out     []byte
	batches []byte // Fetch's record bytes, reused
	produce kmsg.ProduceRequest
}

func (s *Server) serve(nc net.Conn) {
	r := bufio.NewReaderSize(nc, 256<<10)
	w := bufio.NewWriterSize(nc, 256<<10)
	c := &conn{s: s}
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return
		}
		size := int(int32(binary.BigEndian.Uint32(sizeBuf[:])))
		if size < 8 || size > maxFrameBytes {
			return
		}
		if cap(c.frame) < size {
			c.frame = make([]byte, size)
		}
		c.frame = c.frame[:size]
		if _, err := io.ReadFull(r, c.frame); err != nil {
			return
		}
		resp, err := c.handle(c.frame)
		if err != nil {
			return
		}
		if resp != nil {
			if _, err := w.Write(resp); err != nil {
				return
			}
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// errClose asks the connection loop to close, as Kafka does for requests it
// cannot parse or does not serve.
var errClose = errors.New("nullbroker: close connection")

// handle answers one request frame. It returns the whole response frame
// (size prefix included), nil for acks=0 produce, or errClose.
func (c *conn) handle(frame []byte) ([]byte, error) {
	key := int16(binary.BigEndian.Uint16(frame[0:]))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	correlationID := binary.BigEndian.Uint32(frame[4:])
	api, ok := lookup(key)
	if !ok {
		return nil, errClose
	}
	if key == keyAPIVersions && version > api.max {
		// Kafka answers an unknown ApiVersions version with a v0 body
		// carrying UNSUPPORTED_VERSION and the list, so the client can
		// retry with a version it shares.
		return c.respond(correlationID, false, apiVersions(0, errUnsupportedVersion)), nil
	}
	if version < api.min || version > api.max {
		return nil, errClose
	}
	body, err := skipHeader(frame[8:], version >= api.flexibleFrom)
	if err != nil {
		return nil, errClose
	}
	// ApiVersions responses always use header v0 (KIP-511).
	flexibleResp := version >= api.flexibleFrom && key != keyAPIVersions
	var resp kmsg.Response
	switch key {
	case keyAPIVersions:
		resp = apiVersions(version, 0)
	case keyMetadata:
		req := kmsg.MetadataRequest{Version: version}
		if err := req.ReadFrom(body); err != nil {
			return nil, errClose
		}
		resp = c.s.metadata(&req)
	case keyInitProducerID:
		r := kmsg.NewPtrInitProducerIDResponse()
		r.Version = version
		r.ProducerID = c.s.producerID.Add(1)
		r.ProducerEpoch = 0
		resp = r
	case keyCreateTopics:
		req := kmsg.CreateTopicsRequest{Version: version}
		if err := req.ReadFrom(body); err != nil {
			return nil, errClose
		}
		resp = c.s.createTopics(&req)
	case keyFetch:
		req := kmsg.FetchRequest{Version: version}
		if err := req.ReadFrom(body); err != nil {
			return nil, errClose
		}
		resp = c.fetch(&req)
	case keyListOffsets:
		req := kmsg.ListOffsetsRequest{Version: version}
		if err := req.ReadFrom(body); err != nil {
			return nil, errClose
		}
		resp = c.s.listOffsets(&req)
	case keyProduce:
		c.produce = kmsg.ProduceRequest{Version: version}
		if err := c.produce.UnsafeReadFrom(body); err != nil {
			return nil, errClose
		}
		r := c.s.produceResponse(&c.produce)
		if c.produce.Acks == 0 {
			return nil, nil
		}
		resp = r
	}
	return c.respond(correlationID, flexibleResp, resp), nil
}

// respond encodes a response frame into the connection's reused buffer.
func (c *conn) respond(correlationID uint32, flexible bool, resp kmsg.Response) []byte {
	out := c.out[:0]
	out = append(out, 0, 0, 0, 0)
	out = binary.BigEndian.AppendUint32(out, correlationID)
	if flexible {
		out = append(out, 0) // no header tagged fields
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	c.out = out
	return out
}

// skipHeader skips the client id and, for the flexible header, its tagged
// fields, returning the request body.
//
//	request header v1: client_id (int16 length, -1 = null)
//	request header v2: v1 + tagged fields (uvarint count, then tag, size, bytes)
func skipHeader(b []byte, flexible bool) ([]byte, error) {
	if len(b) < 2 {
		return nil, io.ErrUnexpectedEOF
	}
	n := int(int16(binary.BigEndian.Uint16(b)))
	b = b[2:]
	if n > 0 {
		if n > len(b) {
			return nil, io.ErrUnexpectedEOF
		}
		b = b[n:]
	}
	if !flexible {
		return b, nil
	}
	count, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, io.ErrUnexpectedEOF
	}
	b = b[w:]
	for range count {
		_, w = binary.Uvarint(b)
		if w <= 0 {
			return nil, io.ErrUnexpectedEOF
		}
		b = b[w:]
		size, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < size {
			return nil, io.ErrUnexpectedEOF
		}
		b = b[w+int(size):]
	}
	return b, nil
}

func apiVersions(version int16, errorCode int16) *kmsg.ApiVersionsResponse {
	r := kmsg.NewPtrApiVersionsResponse()
	r.Version = version
	r.ErrorCode = errorCode
	for _, a := range served {
		r.ApiKeys = append(r.ApiKeys, kmsg.ApiVersionsResponseApiKey{
			ApiKey: a.key, MinVersion: a.min, MaxVersion: a.max,
		})
	}
	return r
}

func (s *Server) metadata(req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	r := kmsg.NewPtrMetadataResponse()
	r.Version = req.Version
	host := s.host
	r.Brokers = []kmsg.MetadataResponseBroker{{NodeID: s.opts.NodeID, Host: host, Port: s.port}}
	clusterID := "nullbroker"
	r.ClusterID = &clusterID
	r.ControllerID = s.opts.NodeID
	addTopic := func(name string, t *topic) {
		rt := kmsg.NewMetadataResponseTopic()
		n := name
		rt.Topic = &n
		rt.TopicID = t.id
		for p := range t.partitions {
			rp := kmsg.NewMetadataResponseTopicPartition()
			rp.Partition = int32(p)
			rp.Leader = s.opts.NodeID
			rp.Replicas = []int32{s.opts.NodeID}
			rp.ISR = []int32{s.opts.NodeID}
			rt.Partitions = append(rt.Partitions, rp)
		}
		r.Topics = append(r.Topics, rt)
	}
	if req.Topics == nil {
		s.mu.Lock()
		names := make([]string, 0, len(s.topics))
		ts := make([]*topic, 0, len(s.topics))
		for name, t := range s.topics {
			names = append(names, name)
			ts = append(ts, t)
		}
		s.mu.Unlock()
		for i := range names {
			addTopic(names[i], ts[i])
		}
		return r
	}
	for _, rt := range req.Topics {
		if rt.Topic == nil {
			continue
		}
		t, _ := s.getTopic(*rt.Topic, true, 0)
		addTopic(*rt.Topic, t)
	}
	return r
}

func (s *Server) createTopics(req *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	r := kmsg.NewPtrCreateTopicsResponse()
	r.Version = req.Version
	for _, rt := range req.Topics {
		out := kmsg.NewCreateTopicsResponseTopic()
		out.Topic = rt.Topic
		partitions := rt.NumPartitions
		if partitions == 0 || partitions < -1 {
			out.ErrorCode = errInvalidPartitions
			r.Topics = append(r.Topics, out)
			continue
		}
		if req.ValidateOnly {
			r.Topics = append(r.Topics, out)
			continue
		}
		t, created := s.getTopic(rt.Topic, true, partitions)
		if !created {
			out.ErrorCode = errTopicAlreadyExists
			msg := fmt.Sprintf("Topic '%s' already exists.", rt.Topic)
			out.ErrorMessage = &msg
		}
		out.TopicID = t.id
		out.NumPartitions = int32(len(t.partitions))
		out.ReplicationFactor = 1
		r.Topics = append(r.Topics, out)
	}
	return r
}

// Record batch v2 header fields read here (offsets from the batch start):
//
//	 0 baseOffset int64 | 8 batchLength int32 | 12 partitionLeaderEpoch int32
//	16 magic int8 | 17 crc uint32 | 21 attributes int16 | 23 lastOffsetDelta int32
//	... 57 recordsCount int32 | 61 records
const (
	batchLengthAt     = 8
	lastOffsetDeltaAt = 23
	batchHeaderBytes  = 61
	batchLogOverhead  = 12 // baseOffset + batchLength
)

// countRecords returns the number of offsets the batches in records take.
func countRecords(records []byte) int64 {
	var n int64
	for len(records) >= batchHeaderBytes {
		length := int(int32(binary.BigEndian.Uint32(records[batchLengthAt:])))
		n += int64(int32(binary.BigEndian.Uint32(records[lastOffsetDeltaAt:]))) + 1
		if length <= 0 || batchLogOverhead+length > len(records) {
			break
		}
		records = records[batchLogOverhead+length:]
	}
	return n
}

func (s *Server) produceResponse(req *kmsg.ProduceRequest) *kmsg.ProduceResponse {
	r := kmsg.NewPtrProduceResponse()
	r.Version = req.Version
	r.Topics = make([]kmsg.ProduceResponseTopic, 0, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		t, _ := s.getTopic(rt.Topic, true, 0)
		out := kmsg.ProduceResponseTopic{Topic: rt.Topic}
		out.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			op := &out.Partitions[j]
			op.Default()
			op.Partition = rp.Partition
			if rp.Partition < 0 || int(rp.Partition) >= len(t.partitions) {
				op.ErrorCode = errUnknownTopicOrPartition
				op.BaseOffset = -1
				continue
			}
			n := countRecords(rp.Records)
			// Before the offsets move: a consumer that sees them
			// finds a template.
			t.maybeTemplate(rp.Partition, rp.Records)
			op.BaseOffset = t.partitions[rp.Partition].Add(n) - n
		}
		r.Topics = append(r.Topics, out)
	}
	return r
}
