// Describe the cluster through KafkaJS's admin client and print it as JSON.
//
// Driven by tests/integration (TestKafkaJSDescribeCluster); kafkajs comes from
// `npm ci` in this folder (scripts/install-test-deps.sh does it).
//
// usage: node describe_cluster.js BOOTSTRAP   (e.g. 127.0.0.1:9092)
// prints: {"clusterId": ..., "controller": ..., "brokers": [{"nodeId": ..., "host": ..., "port": ...}]}
// exit status: 0 on success; 1 with the error on stderr otherwise.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

async function main () {
  const bootstrap = process.argv[2]
  if (!bootstrap) {
    console.error('usage: node describe_cluster.js BOOTSTRAP')
    process.exit(2)
  }
  const kafka = new Kafka({
    clientId: 'ringbroker-it-kafkajs',
    brokers: [bootstrap],
    connectionTimeout: 5000,
    requestTimeout: 5000,
    // One attempt: the Go test owns timeouts, and a retry loop would hide a broker bug.
    retry: { retries: 0 },
    logLevel: logLevel.ERROR
  })
  const admin = kafka.admin()
  await admin.connect()
  try {
    const cluster = await admin.describeCluster()
    console.log(JSON.stringify(cluster))
  } finally {
    await admin.disconnect()
  }
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err))
  process.exit(1)
})
