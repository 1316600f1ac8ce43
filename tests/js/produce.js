// Produce records with KafkaJS and print the broker's acknowledgements as JSON.
//
// Driven by tests/integration (TestKafkaJSProduce), which reads the records back with
// franz-go: KafkaJS has no consumer without a consumer group, and groups are issue 5.
//
// usage: node produce.js BOOTSTRAP TOPIC IDEMPOTENT(true|false) CODEC(none|gzip) IN.jsonl
//   IN holds JSON lines {"p": partition, "k": base64 key or null, "v": base64 value};
//   records are sent in file order, 250 per send() call, acks -1.
// prints: {"acks": [{"partition": P, "baseOffset": "N", "count": C}, ...]}
// exit status: 0 on success; 1 with the error on stderr otherwise.
'use strict'

const fs = require('fs')
const { Kafka, CompressionTypes, logLevel } = require('kafkajs')

async function main () {
  const [bootstrap, topic, idempotentArg, codec, inPath] = process.argv.slice(2)
  if (!inPath) {
    console.error('usage: node produce.js BOOTSTRAP TOPIC IDEMPOTENT CODEC IN.jsonl')
    process.exit(2)
  }
  const idempotent = idempotentArg === 'true'
  const records = fs.readFileSync(inPath, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => {
    const r = JSON.parse(l)
    return {
      partition: r.p,
      key: r.k === null ? null : Buffer.from(r.k, 'base64'),
      value: Buffer.from(r.v, 'base64')
    }
  })
  const kafka = new Kafka({
    clientId: 'ringbroker-it-kafkajs',
    brokers: [bootstrap],
    connectionTimeout: 5000,
    requestTimeout: 10000,
    logLevel: logLevel.ERROR
  })
  const producer = kafka.producer(idempotent ? { idempotent: true, maxInFlightRequests: 1 } : {})
  await producer.connect()
  const acks = []
  try {
    for (let i = 0; i < records.length; i += 250) {
      const chunk = records.slice(i, i + 250)
      const res = await producer.send({
        topic,
        acks: -1,
        compression: codec === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
        messages: chunk
      })
      for (const r of res) {
        if (r.errorCode !== 0) throw new Error(`partition ${r.partition}: error code ${r.errorCode}`)
        const count = chunk.filter((m) => m.partition === r.partition).length
        acks.push({ partition: r.partition, baseOffset: r.baseOffset, count })
      }
    }
  } finally {
    await producer.disconnect()
  }
  console.log(JSON.stringify({ acks }))
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err))
  process.exit(1)
})
