// HangingTxnProducer: Kafka's Java transactional producer that opens a
// transaction, writes N records to partition 0 of TOPIC, flushes them and
// then dies without ending the transaction (Runtime.halt: no EndTxn, no
// close), as a producer killed mid-transaction does. Its transaction
// timeout is the broker's maximum (15 minutes), so the coordinator does not
// abort the transaction during a test. Run as a single-file source program
// with Kafka's jars:
//   kafka-run-class.sh HangingTxnProducer.java BOOTSTRAP TOPIC TRANSACTIONAL_ID N
import java.util.Properties;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.serialization.StringSerializer;

public class HangingTxnProducer {
    public static void main(String[] a) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, a[0]);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, a[2]);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "900000");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        int n = Integer.parseInt(a[3]);
        KafkaProducer<String, String> pr = new KafkaProducer<>(p);
        pr.initTransactions();
        pr.beginTransaction();
        for (int i = 0; i < n; i++)
            pr.send(new ProducerRecord<>(a[1], 0, "k" + i, "h-" + i)).get();
        System.out.println("transaction left open: " + n + " records");
        System.out.flush();
        Runtime.getRuntime().halt(0);
    }
}
