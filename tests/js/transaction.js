// Start a KafkaJS transaction and print how it failed.
//
// Driven by tests/integration (TestTransactionsFailFast): ringbroker has no
// transaction coordinator yet and must make a transactional producer fail at
// once with a non-retriable error.
//
// usage: node transaction.js BOOTSTRAP TRANSACTIONAL_ID
// prints: {"ok": false, "name": error class, "type": Kafka error type, "retriable": bool, "message": text}
// exit status: 0 when it printed a failure; 1 if the transaction unexpectedly started.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

async function main () {
  const [bootstrap, transactionalId] = process.argv.slice(2)
  const kafka = new Kafka({
    clientId: 'ringbroker-it-kafkajs-txn',
    brokers: [bootstrap],
    connectionTimeout: 5000,
    requestTimeout: 10000,
    logLevel: logLevel.NOTHING
  })
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    const txn = await producer.transaction()
    await txn.abort()
    console.log(JSON.stringify({ ok: true }))
    process.exitCode = 1
  } catch (e) {
    const cause = e.originalError || e.cause || e
    if (process.env.TXN_DEBUG) console.error(e)
    console.log(JSON.stringify({ ok: false, name: e.name, type: cause.type || e.type || '', retriable: !!(cause.retriable || e.retriable), message: String(e.message) + ' / ' + String(cause.message) }))
  } finally {
    await producer.disconnect()
  }
}

main().catch((e) => { console.error(e); process.exit(1) })
