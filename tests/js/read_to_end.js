// Read a topic from the beginning up to given end offsets with a KafkaJS consumer
// (a fresh group, fromBeginning, eachMessage). For compacted topics: offsets have
// gaps, so it stops on the offset it reaches, not on a record count.
//
// Driven by tests/integration (compaction_clients_test.go).
//
// usage: node read_to_end.js BOOTSTRAP TOPIC GROUP ENDS OUT.jsonl DEADLINE_S
//
// ENDS is "partition:end,..." (an end is the high watermark: the record at end-1
// must exist; a partition whose end is 0 is skipped). Every record read is written
// to OUT as a JSON line {"p": partition, "o": offset, "k": base64 key or null,
// "v": base64 value or null (a tombstone)}.
// prints: {"consumed": N, "short": {partition: last offset read, ...}, "crashes": [...]}
// exit status: 0 when every partition reached its end before DEADLINE_S; 1 otherwise.
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

async function main () {
  const [bootstrap, topic, groupId, endsArg, outPath, deadlineArg] = process.argv.slice(2)
  if (!deadlineArg) {
    console.error('usage: node read_to_end.js BOOTSTRAP TOPIC GROUP ENDS OUT.jsonl DEADLINE_S')
    process.exit(2)
  }
  const ends = {}
  for (const part of endsArg.split(',')) {
    const [p, end] = part.split(':').map(Number)
    if (end > 0) ends[p] = end
  }
  const last = {}
  for (const p of Object.keys(ends)) last[p] = -1
  const done = () => Object.keys(ends).every((p) => last[p] >= ends[p] - 1)

  const deadline = Date.now() + Number(deadlineArg) * 1000
  const kafka = new Kafka({
    clientId: 'ringbroker-it-kafkajs',
    brokers: [bootstrap],
    connectionTimeout: 5000,
    requestTimeout: 10000,
    logLevel: logLevel.ERROR
  })
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 100 })
  const crashes = []
  consumer.on(consumer.events.CRASH, (e) => {
    crashes.push(String(e.payload.error && e.payload.error.message))
  })
  const out = fs.openSync(outPath, 'w')
  let consumed = 0
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const offset = Number(message.offset)
      fs.writeSync(out, JSON.stringify({
        p: partition,
        o: offset,
        k: message.key === null ? null : message.key.toString('base64'),
        v: message.value === null ? null : message.value.toString('base64')
      }) + '\n')
      consumed++
      if (partition in last) last[partition] = Math.max(last[partition], offset)
    }
  })
  while (!done() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  await consumer.disconnect()
  fs.closeSync(out)
  const short = {}
  for (const p of Object.keys(ends)) {
    if (last[p] < ends[p] - 1) short[p] = last[p]
  }
  console.log(JSON.stringify({ consumed, short, crashes }))
  process.exit(done() && crashes.length === 0 ? 0 : 1)
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err))
  process.exit(1)
})
