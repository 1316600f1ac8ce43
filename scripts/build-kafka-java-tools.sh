#!/usr/bin/env bash
# build-kafka-java-tools.sh: build a runnable subset of Apache Kafka's Java
# client and command-line tools offline, from a git checkout (or bare mirror)
# of apache/kafka, with javac, protoc and Debian's jars only. Opt-in: make
# test does not need it; make java-tools-test runs Kafka's tools against
# ringbrokerd with what it builds.
#
# Usage: scripts/build-kafka-java-tools.sh KAFKA_GIT_DIR [TAG] [OUTDIR]
#   KAFKA_GIT_DIR  git dir of apache/kafka (bare or not)
#   TAG            Kafka tag (default 3.8.0: the first whose console consumer is Java)
#   OUTDIR         output dir (default .deps/kafka-java-TAG in the repo); launchers in OUTDIR/bin
# Env:
#   OTEL_MIRROR     git dir of open-telemetry/opentelemetry-proto (Kafka >= 3.7 clients need its
#                   generated messages, KIP-714), or
#   OTEL_PROTO_DIR  a dir holding opentelemetry/proto/**.proto of the tag Kafka's build names
#   SKIP_APT=1      don't run apt-get
#   KEEP_TMP=1      keep the temporary build tree
#
# What it does (mirrors Kafka's Gradle build, minus Gradle):
#   1. apt-get install the Debian jars + protoc
#   2. git archive TAG into a temp dir
#   3. javac the `generator` module, run MessageGenerator for clients (same args as :clients:processMessages)
#   4. protoc + javac the opentelemetry-proto messages (Kafka's `opentelemetryProto` dependency, KIP-714)
#   5. javac all of `clients` except the broker-side OAUTHBEARER/OIDC classes that need jose4j
#      (a compileOnly dependency of clients that Debian doesn't package) and their dependents
#   6. javac every class of `tools` that compiles (server-common/storage classes are pulled in via
#      -sourcepath); files that can't compile for lack of a dependency (connect runtime, jose4j,
#      jackson-dataformat-csv, log4j appender) are dropped and listed in OUTDIR/BUILD-INFO.txt
#      (javac sees a copy of Debian's jackson-databind with upstream's throws clause on writeValueAsString)
#   7. jars + launchers bin/<upstream-script-name>.sh for every upstream bin/ script whose main class was built
set -euo pipefail

MIRROR=${1:?usage: $0 KAFKA_GIT_DIR [TAG] [OUTDIR]}
TAG=${2:-3.8.0}
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${3:-$REPO/.deps/kafka-java-$TAG}
case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac
OTEL_MIRROR=${OTEL_MIRROR:-}
NICE="nice -n 19"
JAVAC_OPTS=(-J-Xmx2g -nowarn -encoding UTF-8 -g)
J=/usr/share/java
t0=$(date +%s)
log() { echo "[build-kafka-java-tools $(( $(date +%s) - t0 ))s] $*" >&2; }

# ---------------------------------------------------------------- 1. packages
DEB_PKGS=(libjackson2-databind-java libjackson2-annotations-java libjackson2-core-java
          libargparse4j-java libjoptsimple-java libslf4j-java libzstd-jni-java libzstd-jni1
          liblz4-java libsnappy-java libsnappy-jni libprotobuf-java protobuf-compiler libasm-java)
if [ "${SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${DEB_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
for c in java javac jar protoc git; do command -v $c >/dev/null || { echo "missing $c" >&2; exit 1; }; done

# ---------------------------------------------------------------- 2. source
TMP=$(mktemp -d /tmp/kafka-build.XXXXXX)
[ "${KEEP_TMP:-0}" = 1 ] || trap 'rm -rf "$TMP"' EXIT
SRC=$TMP/src; B=$TMP/classes; mkdir -p "$SRC" "$B"
log "git archive $TAG -> $SRC"
git -C "$MIRROR" archive "$TAG" | tar -x -C "$SRC"
COMMIT=$(git -C "$MIRROR" rev-parse --short=16 "$TAG^{commit}")
cd "$SRC"

# ---------------------------------------------------------------- 3. message generator
GEN_CP=$J/jackson-databind.jar:$J/jackson-core.jar:$J/jackson-annotations.jar:$J/argparse4j.jar
log "javac generator"
mkdir -p "$B/generator"
$NICE javac "${JAVAC_OPTS[@]}" -d "$B/generator" -cp "$GEN_CP" $(find generator/src/main/java -name '*.java')
log "MessageGenerator (clients)"
# same arguments as `project(':clients') { task processMessages }` in build.gradle
(cd clients && $NICE java -cp "$B/generator:$GEN_CP" org.apache.kafka.message.MessageGenerator \
   -p org.apache.kafka.common.message \
   -o src/generated/java/org/apache/kafka/common/message \
   -i src/main/resources/common/message \
   -t ApiMessageTypeGenerator \
   -m MessageDataGenerator JsonConverterGenerator) >&2

# ---------------------------------------------------------------- 4. opentelemetry-proto
OTEL_VER=$(sed -n 's/^ *opentelemetryProto: *"\([^"]*\)".*/\1/p' gradle/dependencies.gradle | head -1)
EXTRA_CP=""
if [ -n "$OTEL_VER" ]; then
  OTEL_TAG=v${OTEL_VER%-alpha}   # artifact 1.0.0-alpha is generated from proto tag v1.0.0
  mkdir -p "$TMP/otel/proto" "$TMP/otel/java" "$B/otel"
  if [ -n "$OTEL_MIRROR" ] && [ -d "$OTEL_MIRROR" ]; then
    log "opentelemetry-proto $OTEL_TAG from $OTEL_MIRROR"
    git -C "$OTEL_MIRROR" archive "$OTEL_TAG" opentelemetry/proto | tar -x -C "$TMP/otel/proto"
  elif [ -n "${OTEL_PROTO_DIR:-}" ] && [ -d "$OTEL_PROTO_DIR/opentelemetry" ]; then
    log "opentelemetry-proto $OTEL_TAG from $OTEL_PROTO_DIR"
    cp -r "$OTEL_PROTO_DIR"/opentelemetry "$TMP/otel/proto/"
  else
    echo "need opentelemetry-proto $OTEL_TAG sources (OTEL_MIRROR or OTEL_PROTO_DIR)" >&2; exit 1
  fi
  protoc -I "$TMP/otel/proto" --java_out="$TMP/otel/java" $(cd "$TMP/otel/proto" && find opentelemetry -name '*.proto')
  $NICE javac "${JAVAC_OPTS[@]}" -d "$B/otel" -cp $J/protobuf.jar $(find "$TMP/otel/java" -name '*.java')
  EXTRA_CP=$B/otel
fi

# ---------------------------------------------------------------- 4b. compile-time jackson-databind
# Debian's jackson-databind 2.14.0-1+deb12u1 declares ObjectMapper/ObjectWriter.writeValueAsString as
# `throws JsonProcessingException, IOException` (upstream: only JsonProcessingException), which makes
# Kafka's `catch (JsonProcessingException e)` sites fail to compile. Rather than patching Kafka, javac
# gets a copy of the jar with IOException removed from that throws clause (checked exceptions are a
# javac-only notion; at run time the unmodified Debian jar is used).
mkdir -p "$TMP/fixjackson"
cat > "$TMP/fixjackson/FixJacksonSignatures.java" <<'JAVA'
import org.objectweb.asm.*;
import java.io.*;
import java.util.*;
import java.util.zip.*;

/** Copy a jar, dropping java/io/IOException from the throws clause of writeValueAsString
 *  in ObjectMapper/ObjectWriter (Debian's jackson-databind 2.14.0 declares it; upstream doesn't).
 *  The copy is used on the javac classpath only. */
public class FixJacksonSignatures {
    public static void main(String[] a) throws Exception {
        try (ZipInputStream in = new ZipInputStream(new FileInputStream(a[0]));
             ZipOutputStream out = new ZipOutputStream(new FileOutputStream(a[1]))) {
            for (ZipEntry e; (e = in.getNextEntry()) != null; ) {
                byte[] b = in.readAllBytes();
                String n = e.getName();
                if (n.equals("com/fasterxml/jackson/databind/ObjectMapper.class") || n.equals("com/fasterxml/jackson/databind/ObjectWriter.class")) {
                    ClassReader r = new ClassReader(b);
                    ClassWriter w = new ClassWriter(0);
                    r.accept(new ClassVisitor(Opcodes.ASM9, w) {
                        @Override public MethodVisitor visitMethod(int acc, String name, String desc, String sig, String[] ex) {
                            if (name.equals("writeValueAsString") && ex != null && Arrays.asList(ex).contains("com/fasterxml/jackson/core/JsonProcessingException")) {
                                List<String> l = new ArrayList<>(Arrays.asList(ex)); l.remove("java/io/IOException");
                                if (l.size() != ex.length) System.err.println("fixed " + n + "#" + name);
                                ex = l.toArray(new String[0]);
                            }
                            return super.visitMethod(acc, name, desc, sig, ex);
                        }
                    }, 0);
                    b = w.toByteArray();
                }
                out.putNextEntry(new ZipEntry(n)); out.write(b); out.closeEntry();
            }
        }
    }
}
JAVA
java -cp $J/asm.jar "$TMP/fixjackson/FixJacksonSignatures.java" $J/jackson-databind.jar "$TMP/jackson-databind-compile.jar"
JD_COMPILE=$TMP/jackson-databind-compile.jar

# ---------------------------------------------------------------- 5. clients
# files needing org.jose4j (compileOnly dep, not in Debian) + everything that references them
closure() { # $1 = source root ; prints files transitively depending on org.jose4j
  local root=$1 excl new n simple pkg
  excl=$(grep -rl 'org\.jose4j' "$root" --include='*.java' | sort -u || true)
  while :; do
    new=$excl
    for f in $excl; do
      n=${f#"$root"/}; n=${n%.java}; n=${n//\//.}; simple=${n##*.}; pkg=${n%.*}
      new="$new $(grep -rlE "(^|[^A-Za-z0-9_.])${n//./\\.}([^A-Za-z0-9_]|$)" "$root" --include='*.java' || true)"
      new="$new $(grep -lw "$simple" "$root/${pkg//.//}"/*.java 2>/dev/null || true)"
    done
    new=$(echo $new | tr ' ' '\n' | sed '/^$/d' | sort -u)
    [ "$new" = "$excl" ] && break
    excl=$new
  done
  echo "$excl"
}
closure clients/src/main/java > "$TMP/clients-excluded.txt"
find clients/src/main/java clients/src/generated/java -name '*.java' | grep -vxF -f "$TMP/clients-excluded.txt" > "$TMP/clients-files.txt" || true
CLIENT_DEPS=$J/slf4j-api.jar:$J/zstd-jni.jar:$J/lz4-java.jar:$J/snappy-java.jar:$J/protobuf.jar:$JD_COMPILE:$J/jackson-core.jar:$J/jackson-annotations.jar
log "javac clients ($(wc -l < "$TMP/clients-files.txt") files, $(wc -l < "$TMP/clients-excluded.txt") excluded for jose4j)"
mkdir -p "$B/clients"
$NICE javac "${JAVAC_OPTS[@]}" -d "$B/clients" -cp "$CLIENT_DEPS${EXTRA_CP:+:$EXTRA_CP}" @"$TMP/clients-files.txt"
cp -r clients/src/main/resources/. "$B/clients/"
mkdir -p "$B/clients/kafka"
printf 'commitId=%s\nversion=%s\n' "$COMMIT" "$TAG" > "$B/clients/kafka/kafka-version.properties"

# ---------------------------------------------------------------- 6. tools (+ server-common/storage via sourcepath)
TOOLS_CP=$B/clients:$CLIENT_DEPS${EXTRA_CP:+:$EXTRA_CP}:$J/argparse4j.jar:$J/joptsimple.jar
SP=tools/src/main/java:tools/tools-api/src/main/java:server-common/src/main/java:storage/src/main/java:storage/api/src/main/java:metadata/src/main/java:server/src/main/java:raft/src/main/java
find tools/src/main/java -name '*.java' | sort > "$TMP/tools-files.txt"
: > "$TMP/tools-excluded.txt"
for iter in $(seq 1 25); do
  rm -rf "$B/tools"; mkdir -p "$B/tools"
  log "javac tools, pass $iter ($(wc -l < "$TMP/tools-files.txt") files)"
  if $NICE javac "${JAVAC_OPTS[@]}" -implicit:class -d "$B/tools" -cp "$TOOLS_CP" -sourcepath "$SP" @"$TMP/tools-files.txt" > "$TMP/tools-javac.log" 2>&1; then
    break
  fi
  [ "$iter" = 25 ] && { cat "$TMP/tools-javac.log" >&2; exit 1; }
  progress=0
  # any other failing file under tools/: delete it from the source tree (so -sourcepath can't pull it
  # in either); files referencing it then fail in the next pass and are dropped the same way
  if :; then
    for f in $(grep ': error: ' "$TMP/tools-javac.log" | cut -d: -f1 | sort -u); do
      case "$f" in tools/*) ;; *) continue ;; esac
      [ -f "$f" ] || continue
      rm -f "$f"; echo "$f" >> "$TMP/tools-excluded.txt"; progress=1
      grep -vxF "$f" "$TMP/tools-files.txt" > "$TMP/t" || true; mv "$TMP/t" "$TMP/tools-files.txt"
    done
  fi
  [ $progress = 1 ] || { echo "tools: errors outside the tools module:" >&2; grep ': error: ' "$TMP/tools-javac.log" >&2; exit 1; }
done
[ -d tools/src/main/resources ] && cp -r tools/src/main/resources/. "$B/tools/"

# ---------------------------------------------------------------- 7. package
log "jar + launchers -> $OUT"
rm -rf "$OUT"; mkdir -p "$OUT/libs" "$OUT/bin" "$OUT/config"
jar cf "$OUT/libs/kafka-clients-$TAG.jar" -C "$B/clients" .
jar cf "$OUT/libs/kafka-tools-subset-$TAG.jar" -C "$B/tools" .
[ -n "$EXTRA_CP" ] && jar cf "$OUT/libs/opentelemetry-proto-$OTEL_VER.jar" -C "$B/otel" .
for f in slf4j-api slf4j-simple zstd-jni lz4-java snappy-java protobuf jackson-databind jackson-core jackson-annotations argparse4j joptsimple; do
  cp "$(readlink -f $J/$f.jar)" "$OUT/libs/"
done
cat > "$OUT/config/simplelogger.properties" <<'EOF'
org.slf4j.simpleLogger.defaultLogLevel=warn
org.slf4j.simpleLogger.logFile=System.err
org.slf4j.simpleLogger.showDateTime=true
EOF
cat > "$OUT/bin/kafka-run-class.sh" <<'EOF'
#!/usr/bin/env bash
# usage: kafka-run-class.sh <main-class> [args...]   (KAFKA_OPTS / KAFKA_HEAP_OPTS honoured; log level: KAFKA_LOG_LEVEL=info|debug)
base=$(cd "$(dirname "$0")/.." && pwd)
CP="$base/libs/*"; [ -n "${CLASSPATH:-}" ] && CP="$CP:$CLASSPATH"
exec java ${KAFKA_HEAP_OPTS:--Xmx512M} -cp "$CP" \
  -Djava.library.path=/usr/lib/$(uname -m)-linux-gnu/jni:/usr/lib/$(uname -m)-linux-gnu:/usr/lib/jni \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=${KAFKA_LOG_LEVEL:-warn} -Dorg.slf4j.simpleLogger.logFile=System.err \
  ${KAFKA_OPTS:-} "$@"
EOF
chmod +x "$OUT/bin/kafka-run-class.sh"
built_tools=()
for s in bin/*.sh; do
  cls=$(sed -n 's/^exec .*kafka-run-class\.sh \([A-Za-z0-9_.]*\) .*/\1/p' "$s" | head -1)
  [ -n "$cls" ] || continue
  if [ -f "$B/tools/${cls//.//}.class" ] || [ -f "$B/clients/${cls//.//}.class" ]; then
    printf '#!/usr/bin/env bash\nexec "$(dirname "$0")/kafka-run-class.sh" %s "$@"\n' "$cls" > "$OUT/bin/$(basename "$s")"
    chmod +x "$OUT/bin/$(basename "$s")"; built_tools+=("$(basename "$s") -> $cls")
  fi
done
# tools with a main() but no upstream script
for cls in org.apache.kafka.tools.TransactionalMessageCopier org.apache.kafka.tools.ClientCompatibilityTest; do
  if [ -f "$B/tools/${cls//.//}.class" ]; then
    n=kafka-$(echo "${cls##*.}" | sed 's/\([a-z]\)\([A-Z]\)/\1-\2/g' | tr A-Z a-z).sh
    printf '#!/usr/bin/env bash\nexec "$(dirname "$0")/kafka-run-class.sh" %s "$@"\n' "$cls" > "$OUT/bin/$n"
    chmod +x "$OUT/bin/$n"; built_tools+=("$n -> $cls")
  fi
done
{
  echo "Kafka $TAG ($COMMIT) built $(date -u +%FT%TZ) by build-kafka-java-tools.sh in $(( $(date +%s) - t0 ))s"
  echo "opentelemetry-proto: ${OTEL_VER:-none} (generated with $(protoc --version))"
  echo; echo "Debian packages:"; for p in "${DEB_PKGS[@]}"; do dpkg-query -W -f='  ${Package} ${Version}\n' "$p" 2>/dev/null || true; done
  echo; echo "Launchers:"; printf '  %s\n' "${built_tools[@]}"
  echo; echo "clients files excluded (need org.jose4j: SASL/OAUTHBEARER OIDC login/validator handlers; plain/unsecured SASL, SSL unaffected):"; sed 's/^/  /' "$TMP/clients-excluded.txt"
  echo; echo "tools files excluded (missing deps):"; sed 's/^/  /' "$TMP/tools-excluded.txt"
} > "$OUT/BUILD-INFO.txt"
log "done"
cat "$OUT/BUILD-INFO.txt"
