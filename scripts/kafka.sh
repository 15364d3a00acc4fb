#!/usr/bin/env bash
# A single-node Kafka broker (KRaft, no ZooKeeper) on loopback for the integration tests.
#
#   bash scripts/kafka.sh fetch    fetch the jars (once) and do nothing else
#   bash scripts/kafka.sh start    fetch jars (once), format storage (once), start, wait for the port
#   bash scripts/kafka.sh stop     stop the broker this script started (by its PID file)
#   bash scripts/kafka.sh status   exit 0 when running, 3 when not
#
# Environment:
#   KAFKA_PORT             client listener port on 127.0.0.1 (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1 (default KAFKA_PORT + 1)
#   KAFKA_DIR              data, config, logs and PID file (default .kafka); a second broker needs its own
#   KAFKA_HEAP             JVM heap (default 512m)
#   KAFKA_START_TIMEOUT    seconds `start` waits for the port (default 120)
#
# The jars come from Maven Central through mvn's own configuration (scripts/kafka/pom.xml) and are
# cached in .kafka/lib, shared by every KAFKA_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/scripts/kafka/pom.xml"
LIB="$ROOT/.kafka/lib"
KAFKA_DIR="${KAFKA_DIR:-$ROOT/.kafka}"
KAFKA_PORT_SET="${KAFKA_PORT:-}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_HEAP="${KAFKA_HEAP:-512m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
HOST=127.0.0.1

mkdir -p "$KAFKA_DIR"
KAFKA_DIR="$(cd "$KAFKA_DIR" && pwd)"
CONF_DIR="$KAFKA_DIR/config"
DATA_DIR="$KAFKA_DIR/data"
LOG_DIR="$KAFKA_DIR/logs"
PID_FILE="$KAFKA_DIR/kafka.pid"
PORT_FILE="$KAFKA_DIR/kafka.port"

say() { printf 'kafka.sh: %s\n' "$*"; }
die() {
  printf 'kafka.sh: %s\n' "$*" >&2
  exit 1
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# The PID in the file, if that process is alive and is a Kafka JVM (a stale file may name a reused PID).
running_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

fetch_jars() {
  local stamp="$LIB/.pom.sha256" want
  want="$(sha256sum "$POM" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  command -v mvn >/dev/null || die "mvn is missing (apt-get install maven); it fetches Kafka's jars"
  command -v java >/dev/null || die "java is missing (apt-get install openjdk-17-jre-headless); Kafka 4 needs Java 17+"
  say "fetching Kafka jars with mvn into $LIB"
  # Into a temporary directory first, so an interrupted download never looks complete.
  local tmp="$ROOT/.kafka/lib.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$ROOT/.kafka"
  local log="$ROOT/.kafka/mvn.log"
  if ! mvn -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$log" 2>&1; then
    rm -rf "$tmp"
    tail -n 40 "$log" >&2
    die "mvn could not fetch Kafka's jars; full output in $log"
  fi
  rm -rf "$LIB"
  mv "$tmp" "$LIB"
  echo "$want" >"$stamp"
}

write_config() {
  mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOG_DIR"
  # Rewritten on every start so port changes take effect; the cluster id lives in the data dir.
  cat >"$CONF_DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR
auto.create.topics.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# A test broker: keep little on disk.
log.retention.hours=1
log.segment.bytes=16777216
EOF
  cat >"$CONF_DIR/log4j2.properties" <<EOF
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $LOG_DIR/server.log
appender.file.filePattern = $LOG_DIR/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
EOF
}

JVM=(java "-Xmx$KAFKA_HEAP" "-Xms$KAFKA_HEAP" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$CONF_DIR/log4j2.properties" "-Dkafka.logs.dir=$LOG_DIR" -cp "$LIB/*")

format_storage() {
  [ -f "$DATA_DIR/meta.properties" ] && return 0
  local cluster_id
  cluster_id="$("${JVM[@]}" kafka.tools.StorageTool random-uuid 2>>"$LOG_DIR/format.log")"
  say "formatting $DATA_DIR (cluster $cluster_id)"
  "${JVM[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$CONF_DIR/server.properties" \
    >>"$LOG_DIR/format.log" 2>&1 || die "formatting storage failed; see $LOG_DIR/format.log"
}

cmd_start() {
  local pid
  if pid="$(running_pid)"; then
    say "already running (pid $pid, $HOST:$KAFKA_PORT, dir $KAFKA_DIR)"
    return 0
  fi
  if port_open "$KAFKA_PORT"; then die "port $HOST:$KAFKA_PORT is already taken by another process"; fi
  if port_open "$KAFKA_CONTROLLER_PORT"; then
    die "controller port $HOST:$KAFKA_CONTROLLER_PORT is already taken; set KAFKA_CONTROLLER_PORT"
  fi
  fetch_jars
  write_config
  format_storage
  local started=$SECONDS t0=${EPOCHREALTIME/[.,]/}
  # setsid: the broker outlives the shell that started it and is not killed with its process group.
  setsid "${JVM[@]}" kafka.Kafka "$CONF_DIR/server.properties" </dev/null >"$LOG_DIR/stdout.log" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"
  echo "$KAFKA_PORT" >"$PORT_FILE"
  say "starting (pid $pid) on $HOST:$KAFKA_PORT, controller $HOST:$KAFKA_CONTROLLER_PORT, logs in $LOG_DIR"
  while ! port_open "$KAFKA_PORT"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      tail -n 30 "$LOG_DIR/stdout.log" "$LOG_DIR/server.log" >&2 2>/dev/null || true
      die "the broker exited during startup; see $LOG_DIR"
    fi
    if ((SECONDS - started >= KAFKA_START_TIMEOUT)); then
      die "the broker did not open $HOST:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s (pid $pid still running); see $LOG_DIR"
    fi
    sleep 0.2
  done
  local ms=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
  say "ready on $HOST:$KAFKA_PORT after $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s"
}

cmd_stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    say "not running (dir $KAFKA_DIR)"
    return 0
  fi
  kill -TERM "$pid"
  # A controlled shutdown normally takes a few seconds; after 30 s it is stuck.
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid did not stop after 30s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  say "stopped (pid $pid)"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    # The port it was started with, unless KAFKA_PORT says otherwise.
    [ -z "${KAFKA_PORT_SET:-}" ] && [ -f "$PORT_FILE" ] && KAFKA_PORT="$(cat "$PORT_FILE")"
    if port_open "$KAFKA_PORT"; then
      say "running (pid $pid) on $HOST:$KAFKA_PORT"
    else
      say "running (pid $pid) but $HOST:$KAFKA_PORT is not accepting connections yet"
    fi
    return 0
  fi
  say "not running (dir $KAFKA_DIR)"
  return 3
}

case "${1:-}" in
  fetch) fetch_jars ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: bash scripts/kafka.sh fetch|start|stop|status" >&2
    exit 2
    ;;
esac
