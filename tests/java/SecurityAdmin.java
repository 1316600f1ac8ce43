// SecurityAdmin: what kafka-configs.sh (SCRAM users, client quotas) and
// kafka-acls.sh send, through Kafka's Java Admin client, for the javatools
// integration tests. Kafka 3.x's kafka-configs.sh and kafka-acls.sh are
// Scala (core) and cannot be built by scripts/build-kafka-java-tools.sh;
// this program makes the same Admin calls those commands make.
//
// Run as a single-file source program with Kafka's client jars:
//   kafka-run-class.sh SecurityAdmin.java CLIENT.properties OP...
// Each OP is colon-separated and runs in order; results go to stdout:
//   scram-upsert:USER:MECHANISM:ITERATIONS:PASSWORD
//   scram-describe:USER
//   quota-alter:ENTITY:KEY=VALUE[,KEY=VALUE...]   ENTITY is user=U, client-id=C or user=U+client-id=C
//   quota-describe:ENTITY
//   acl-add:USER:topic|group:NAME:OP[,OP...]      (principal User:USER)
//   acl-list:topic|group:NAME
import java.io.FileInputStream;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.acl.*;
import org.apache.kafka.common.quota.*;
import org.apache.kafka.common.resource.*;

public class SecurityAdmin {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        try (Admin admin = Admin.create(props)) {
            for (int i = 1; i < args.length; i++) {
                run(admin, args[i].split(":", -1));
            }
        }
    }

    static ClientQuotaEntity entity(String spec) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String part : spec.split("\\+")) {
            String[] kv = part.split("=", 2);
            m.put(kv[0].equals("user") ? ClientQuotaEntity.USER : ClientQuotaEntity.CLIENT_ID, kv[1]);
        }
        return new ClientQuotaEntity(m);
    }

    static void run(Admin admin, String[] op) throws Exception {
        switch (op[0]) {
            case "scram-upsert": {
                ScramMechanism mech = ScramMechanism.fromMechanismName(op[2]);
                admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(op[1],
                    new ScramCredentialInfo(mech, Integer.parseInt(op[3])), op[4]))).all().get();
                System.out.println("Completed updating config for user " + op[1] + ".");
                break;
            }
            case "scram-describe": {
                UserScramCredentialsDescription d = admin.describeUserScramCredentials(List.of(op[1])).description(op[1]).get();
                StringJoiner j = new StringJoiner(",");
                for (ScramCredentialInfo c : d.credentialInfos())
                    j.add(c.mechanism().mechanismName() + "=iterations=" + c.iterations());
                System.out.println("SCRAM credential configs for user-principal '" + op[1] + "' are " + j);
                break;
            }
            case "quota-alter": {
                List<ClientQuotaAlteration.Op> ops = new ArrayList<>();
                for (String kv : op[2].split(",")) {
                    String[] p = kv.split("=", 2);
                    ops.add(new ClientQuotaAlteration.Op(p[0], Double.parseDouble(p[1])));
                }
                admin.alterClientQuotas(List.of(new ClientQuotaAlteration(entity(op[1]), ops))).all().get();
                System.out.println("Completed updating quotas for " + op[1] + ".");
                break;
            }
            case "quota-describe": {
                List<ClientQuotaFilterComponent> comps = new ArrayList<>();
                for (Map.Entry<String, String> e : entity(op[1]).entries().entrySet())
                    comps.add(ClientQuotaFilterComponent.ofEntity(e.getKey(), e.getValue()));
                Map<ClientQuotaEntity, Map<String, Double>> got = admin.describeClientQuotas(ClientQuotaFilter.containsOnly(comps)).entities().get();
                for (Map.Entry<ClientQuotaEntity, Map<String, Double>> e : got.entrySet()) {
                    StringJoiner j = new StringJoiner(", ");
                    new TreeMap<>(e.getValue()).forEach((k, v) -> j.add(k + "=" + v));
                    System.out.println("Quota configs for " + new TreeMap<>(e.getKey().entries()) + " are " + j);
                }
                break;
            }
            case "acl-add": {
                ResourcePattern rp = new ResourcePattern(op[2].equals("topic") ? ResourceType.TOPIC : ResourceType.GROUP, op[3], PatternType.LITERAL);
                List<AclBinding> bs = new ArrayList<>();
                for (String o : op[4].split(","))
                    bs.add(new AclBinding(rp, new AccessControlEntry("User:" + op[1], "*", AclOperation.fromString(o), AclPermissionType.ALLOW)));
                admin.createAcls(bs).all().get();
                System.out.println("Adding ACLs for resource `" + rp + "`: " + bs.size());
                break;
            }
            case "acl-list": {
                ResourcePatternFilter rp = new ResourcePatternFilter(op[1].equals("topic") ? ResourceType.TOPIC : ResourceType.GROUP, op[2], PatternType.ANY);
                for (AclBinding b : admin.describeAcls(new AclBindingFilter(rp, AccessControlEntryFilter.ANY)).values().get())
                    System.out.println(b);
                break;
            }
            default:
                throw new IllegalArgumentException("unknown op " + op[0]);
        }
    }
}
