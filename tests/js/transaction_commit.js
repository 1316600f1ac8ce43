// Commit and abort KafkaJS transactions, then read the topic read_committed
// and print what was seen.
//
// Driven by tests/integration (TestTransactionsClients): transaction 1
// commits c1 c2, transaction 2 aborts a1, transaction 3 commits c3; a
// read_committed consumer must see exactly c1 c2 c3.
//
// usage: node transaction_commit.js BOOTSTRAP TRANSACTIONAL_ID TOPIC
// prints: {"values": [values seen by the read_committed consumer]}
// exit status: 0 when it printed; 1 on a client error (printed to stderr).
'use strict'

const crypto = require('crypto')
const { Kafka, logLevel } = require('kafkajs')

async function main () {
  const [bootstrap, transactionalId, topic] = process.argv.slice(2)
  const kafka = new Kafka({
    clientId: 'ringbroker-it-kafkajs-txn-commit',
    brokers: [bootstrap],
    connectionTimeout: 5000,
    requestTimeout: 10000,
    logLevel: logLevel.NOTHING
  })
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  for (const [values, commit] of [[['c1', 'c2'], true], [['a1'], false], [['c3'], true]]) {
    const txn = await producer.transaction()
    await txn.send({ topic, messages: values.map((value) => ({ value })) })
    if (commit) await txn.commit()
    else await txn.abort()
  }
  await producer.disconnect()

  // readUncommitted: false is KafkaJS's read_committed.
  const consumer = kafka.consumer({ groupId: 'txn-read-' + crypto.randomUUID(), readUncommitted: false, maxWaitTimeInMs: 200 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const values = []
  let quiet = null
  const done = new Promise((resolve) => {
    const deadline = setTimeout(resolve, 30000)
    consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value.toString())
        if (values.length >= 3 && quiet === null) {
          // One more second for anything that should not be there.
          quiet = setTimeout(() => { clearTimeout(deadline); resolve() }, 1000)
        }
      }
    })
  })
  await done
  await consumer.disconnect()
  console.log(JSON.stringify({ values }))
}

main().catch((e) => { console.error(e); process.exit(1) })
