// Produce a paced, bounded stream of keyed records with KafkaJS's idempotent producer
// (acks -1, one request in flight) while a KafkaJS group consumer in the same process
// reads the topic from the beginning, both across a partition leader's SIGKILL that
// the Go test causes mid-stream: the process is never restarted, so producer and
// consumer must fail over on their own (KafkaJS may restart its consumer internally
// after a crash it counts as retriable; that is the client's own recovery).
//
// Driven by tests/integration (cluster_failover_clients_test.go).
//
// usage: node failover_client.js BOOTSTRAP TOPIC PARTITIONS TOTAL RATE DEADLINE_S
//   Record seq (0 <= seq < TOTAL) has key "key-<seq>" and value "kafkajs-<seq>" (seq in
//   five digits) and is sent no earlier than seq/RATE seconds after the start; its
//   partition is the one KafkaJS's DefaultPartitioner picks for its key (computed
//   here and set on the message, so each record's offset is known from the
//   base offset of its send's answer); records due together are sent with one
//   send() per partition (see the note in the loop).
// prints one JSON object a line (times are wall-clock milliseconds):
//   {"ack": [seq, partition, offset, t]}      a record acknowledged
//   {"fail": [seq, "error"]}                  a record given up on
//   {"rec": [partition, offset, "value", t]}  a record the consumer read
//   {"done": {"acked": N, "failed": F, "consumed": C, "errors": [...], "warnings": [...]}}
// exit status: 0 when every record was acknowledged or failed and the consumer read up
// to the last acknowledged offset of every partition within DEADLINE_S; 1 otherwise.
'use strict'

const { Kafka, Partitioners, logLevel } = require('kafkajs')

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const pad5 = (n) => String(n).padStart(5, '0')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main () {
  const [bootstrap, topic, partsArg, totalArg, rateArg, deadlineArg] = process.argv.slice(2)
  if (!deadlineArg) {
    console.error('usage: node failover_client.js BOOTSTRAP TOPIC PARTITIONS TOTAL RATE DEADLINE_S')
    process.exit(2)
  }
  const parts = Number(partsArg)
  const total = Number(totalArg)
  const rate = Number(rateArg)
  const deadline = Date.now() + Number(deadlineArg) * 1000
  const errors = []
  const warnings = []

  const kafka = new Kafka({
    clientId: 'ringbroker-it-failover-kafkajs',
    brokers: bootstrap.split(','),
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
    logLevel: logLevel.NOTHING
  })
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  const consumer = kafka.consumer({
    groupId: 'ringbroker-it-failover-' + topic,
    sessionTimeout: 6000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 100
  })
  consumer.on(consumer.events.CRASH, (e) => {
    if (warnings.length < 20) warnings.push('consumer crash: ' + String(e.payload.error && e.payload.error.message))
  })

  let acked = 0
  let failed = 0
  let consumed = 0
  const maxAcked = {}
  const maxRead = {}
  const finished = () => acked + failed >= total &&
    Object.keys(maxAcked).every((p) => (maxRead[p] === undefined ? -1 : maxRead[p]) >= maxAcked[p])

  await producer.connect()
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const offset = Number(message.offset)
      consumed++
      maxRead[partition] = Math.max(maxRead[partition] === undefined ? -1 : maxRead[partition], offset)
      emit({ rec: [partition, offset, message.value === null ? null : message.value.toString(), Date.now()] })
    }
  })

  // The client's own key partitioner, asked with every partition listed (a
  // keyed record's partition depends only on the partition count).
  const partitioner = Partitioners.DefaultPartitioner()
  const partitionMetadata = []
  for (let p = 0; p < parts; p++) partitionMetadata.push({ partitionId: p, leader: 0 })

  const start = Date.now()
  let seq = 0
  while (seq < total && Date.now() < deadline) {
    const due = Math.min(total, Math.floor((Date.now() - start) * rate / 1000) + 1)
    if (seq >= due) {
      await sleep(5)
      continue
    }
    const chunk = []
    for (; seq < due && chunk.length < 100; seq++) {
      const message = { key: Buffer.from('key-' + pad5(seq)), value: Buffer.from('kafkajs-' + pad5(seq)) }
      message.partition = partitioner({ topic, partitionMetadata, message })
      chunk.push({ seq, message })
    }
    // One send() per partition, so each goes to one leader: KafkaJS 2.2.4's
    // send() keeps the answers of the brokers that answered across its
    // retries (sendMessages.js, responsePerBroker), so when a failed
    // partition's new leader is a broker that already answered for another
    // partition of the same call, that partition's records are never sent
    // and send() resolves without them (seen here as "no answer for
    // partition"; the open pull request tulios/kafkajs#1798 is about the same
    // shared map).
    const byPartition = new Map()
    for (const c of chunk) {
      const p = c.message.partition
      if (!byPartition.has(p)) byPartition.set(p, [])
      byPartition.get(p).push(c)
    }
    for (const [p, cs] of byPartition) {
      try {
        const res = await producer.send({ topic, acks: -1, messages: cs.map((c) => c.message) })
        const now = Date.now()
        const answer = res.find((r) => r.partition === p)
        if (!answer) throw new Error(`send() resolved without an answer for partition ${p}`)
        if (answer.errorCode !== 0) throw new Error(`partition ${p}: error code ${answer.errorCode}`)
        let offset = Number(answer.baseOffset)
        for (const c of cs) {
          acked++
          maxAcked[p] = Math.max(maxAcked[p] === undefined ? -1 : maxAcked[p], offset)
          emit({ ack: [c.seq, p, offset, now] })
          offset++
        }
      } catch (err) {
        for (const c of cs) {
          failed++
          emit({ fail: [c.seq, String(err && err.message)] })
        }
      }
    }
  }
  while (!finished() && Date.now() < deadline) await sleep(20)
  const ok = finished()
  if (!ok) {
    errors.push(`not finished within ${deadlineArg} s: ${acked} acked, ${failed} failed of ${total}; ` +
      `last acked ${JSON.stringify(maxAcked)}, last read ${JSON.stringify(maxRead)}`)
  }
  await consumer.disconnect()
  await producer.disconnect()
  emit({ done: { acked, failed, consumed, errors, warnings } })
  process.exit(ok ? 0 : 1)
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err))
  process.exit(1)
})
