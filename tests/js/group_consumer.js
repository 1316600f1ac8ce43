// A KafkaJS consumer group member: subscribe, run() with eachMessage, commits.
//
// Driven by tests/integration (groups_clients_test.go).
//
// usage: node group_consumer.js BOOTSTRAP TOPIC GROUP CLIENT_ID OUT.jsonl STOP_FILE DEADLINE_S
//
// The member subscribes to TOPIC in GROUP from the beginning and runs with
// eachMessage and KafkaJS's auto commit: each message's offset is resolved after
// eachMessage returns and the resolved offsets are committed (OffsetCommit) at the end
// of every fetched batch, and once more when the consumer stops. eachMessage appends
// the record to OUT as a JSON line {"c": CLIENT_ID, "p": partition, "o": offset,
// "k": base64 key or null, "v": base64 value}; so a record in OUT may still be
// uncommitted for the rest of its batch (at-least-once after a rebalance).
//
// It stops when STOP_FILE exists (consumer.disconnect(): final commit, LeaveGroup) or
// after DEADLINE_S seconds (exit status 1).
// prints: {"consumed": N, "assignments": [[partitions...], ...], "crashes": [...]}
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

async function main () {
  const [bootstrap, topic, groupId, clientId, outPath, stopPath, deadlineArg] = process.argv.slice(2)
  if (!deadlineArg) {
    console.error('usage: node group_consumer.js BOOTSTRAP TOPIC GROUP CLIENT_ID OUT.jsonl STOP_FILE DEADLINE_S')
    process.exit(2)
  }
  const deadline = Date.now() + Number(deadlineArg) * 1000
  const kafka = new Kafka({
    clientId,
    brokers: [bootstrap],
    connectionTimeout: 5000,
    requestTimeout: 10000,
    logLevel: logLevel.ERROR
  })
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 6000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 100,
    retry: { retries: 10 }
  })
  const assignments = []
  const crashes = []
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    assignments.push(((e.payload.memberAssignment || {})[topic] || []).slice().sort((a, b) => a - b))
  })
  consumer.on(consumer.events.CRASH, (e) => {
    crashes.push(String(e.payload.error && e.payload.error.message))
  })

  const out = fs.openSync(outPath, 'a')
  let consumed = 0
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    autoCommit: true,
    eachMessage: async ({ partition, message }) => {
      fs.writeSync(out, JSON.stringify({
        c: clientId,
        p: partition,
        o: Number(message.offset),
        k: message.key === null ? null : message.key.toString('base64'),
        v: (message.value || Buffer.alloc(0)).toString('base64')
      }) + '\n')
      consumed++
    }
  })

  let stopped = false
  while (Date.now() < deadline) {
    if (fs.existsSync(stopPath)) {
      stopped = true
      break
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  await consumer.disconnect()
  fs.closeSync(out)
  console.log(JSON.stringify({ consumed, assignments, crashes }))
  process.exit(stopped && crashes.length === 0 ? 0 : 1)
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err))
  process.exit(1)
})
