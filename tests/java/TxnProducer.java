// TxnProducer: Kafka's Java transactional producer for the javatools
// integration tests. Alternates committed and aborted transactions of
// PER records each; values are c-<txn>-<i> (committed) and a-<txn>-<i>
// (aborted). Run as a single-file source program with Kafka's jars:
//   kafka-run-class.sh TxnProducer.java BOOTSTRAP TOPIC TRANSACTIONAL_ID TXNS PER
import java.util.Properties;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnProducer {
    public static void main(String[] a) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, a[0]);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, a[2]);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        int txns = Integer.parseInt(a[3]), per = Integer.parseInt(a[4]);
        int committed = 0, aborted = 0;
        try (KafkaProducer<String, String> pr = new KafkaProducer<>(p)) {
            pr.initTransactions();
            for (int t = 0; t < txns; t++) {
                boolean commit = t % 2 == 0;
                pr.beginTransaction();
                for (int i = 0; i < per; i++)
                    pr.send(new ProducerRecord<>(a[1], "k" + i, (commit ? "c-" : "a-") + t + "-" + i));
                if (commit) {
                    pr.commitTransaction();
                    committed += per;
                } else {
                    pr.flush();
                    pr.abortTransaction();
                    aborted += per;
                }
            }
        }
        System.out.println("transactions done: committed " + committed + " aborted " + aborted);
    }
}
