// Over TLS, as one principal: create a topic (admin), produce N records, and consume
// them in a consumer group; print what happened as JSON.
//
// Driven by tests/integration (TestKafkaJSTLS).
//
// usage: node secure_roundtrip.js BOOTSTRAP TOPIC GROUP N
//   environment: RB_CA (PEM file of the CA that signed the broker's certificate);
//   RB_CERT and RB_KEY (the client certificate and key, for mTLS), or RB_SCRAM_USER and
//   RB_SCRAM_PASSWORD (SASL_SSL with SCRAM-SHA-512).
// prints: {"created": true|false, "produced": N, "consumed": ["v0", ...]}
// exit status: 0 on success; 1 with the error on stderr otherwise.
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

async function main () {
  const [bootstrap, topic, group, nArg] = process.argv.slice(2)
  const n = parseInt(nArg, 10)
  if (!bootstrap || !group || !(n > 0)) {
    console.error('usage: node secure_roundtrip.js BOOTSTRAP TOPIC GROUP N')
    process.exit(2)
  }
  const ssl = { ca: [fs.readFileSync(process.env.RB_CA, 'utf8')], servername: 'localhost', checkServerIdentity: () => undefined }
  if (process.env.RB_CERT) {
    ssl.cert = fs.readFileSync(process.env.RB_CERT, 'utf8')
    ssl.key = fs.readFileSync(process.env.RB_KEY, 'utf8')
  }
  const config = {
    clientId: 'ringbroker-it-kafkajs-tls',
    brokers: [bootstrap],
    ssl,
    connectionTimeout: 5000,
    requestTimeout: 15000,
    logLevel: logLevel.ERROR
  }
  if (process.env.RB_SCRAM_USER) {
    config.sasl = { mechanism: 'scram-sha-512', username: process.env.RB_SCRAM_USER, password: process.env.RB_SCRAM_PASSWORD }
  }
  const kafka = new Kafka(config)

  const admin = kafka.admin()
  await admin.connect()
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true })
  await admin.disconnect()

  const producer = kafka.producer()
  await producer.connect()
  const messages = []
  for (let i = 0; i < n; i++) messages.push({ value: 'v' + i })
  await producer.send({ topic, messages, acks: -1 })
  await producer.disconnect()

  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 1000 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const consumed = []
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('consumed ' + consumed.length + ' of ' + n + ' in 60 s')), 60000)
    consumer.run({
      eachMessage: async ({ message }) => {
        consumed.push(message.value.toString())
        if (consumed.length >= n) {
          clearTimeout(timer)
          resolve()
        }
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  console.log(JSON.stringify({ created, produced: n, consumed }))
}

main().then(() => process.exit(0), (err) => {
  console.error(err && err.stack ? err.stack : String(err))
  process.exit(1)
})
