/**
 * A Kafka broker of the test's own: single-node KRaft from the jars in .kafka/lib (as scripts/kafka.sh
 * runs it), on free loopback ports, with a SASL_SSL listener for the clients (PLAIN, SCRAM-SHA-256 and
 * SCRAM-SHA-512; its certificate from a test PKI, read as PEM), a plaintext controller listener and a
 * plaintext inter-broker one. Its config, data and logs live in a directory the test owns.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Admin } from '@platformatic/kafka';
import { freePort } from './net.js';
import type { TestPki } from './tls-ca.js';

/** Where scripts/kafka.sh fetch puts Kafka's jars. */
export const KAFKA_LIB = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.kafka', 'lib');

/**
 * Whether the Kafka jars are in .kafka/lib. In CI their absence fails the test run; for a developer it
 * skips with a line saying how to fetch them (as haveCommand does for commands).
 */
export function haveKafkaJars(): boolean {
  const found =
    existsSync(KAFKA_LIB) && readdirSync(KAFKA_LIB).some((f) => /^kafka_2\.\d+-[\d.]+\.jar$/.test(f));
  if (!found) {
    const line = `the Kafka jars are missing from ${KAFKA_LIB}: bash scripts/kafka.sh fetch`;
    if (process.env.CI) throw new Error(`CI: ${line}`);
    console.warn(`skipping: ${line}`);
  }
  return found;
}

export interface PrivateKafka {
  /** The SASL_SSL listener on 127.0.0.1. */
  port: number;
  /** The plaintext inter-broker listener on 127.0.0.1: a port that does not speak TLS. */
  plaintextPort: number;
  /** Kills the broker by its PID. */
  stop(): Promise<void>;
}

export interface PrivateKafkaOptions {
  /** The broker's own directory (config, data, logs); the caller removes it. */
  dir: string;
  /** Its certificate and key (serverCert, serverKey) and the CA clients check them against. */
  pki: TestPki;
  /** The one user, known to every mechanism: PLAIN from the JAAS config, SCRAM from format time. */
  user: string;
  password: string;
  /** How long start waits for a SCRAM login to succeed; default 60 s (it takes about 7). */
  readyTimeoutMs?: number;
}

const run = promisify(execFile);

/** A JAAS value in double quotes, as Kafka's JAAS parser reads it. */
const jaasQuoted = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

function jvm(dir: string): string[] {
  return [
    '-Xmx512m',
    '-Xms256m',
    '-XX:+UseG1GC',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`,
    `-Dkafka.logs.dir=${join(dir, 'logs')}`,
    '-cp',
    `${KAFKA_LIB}/*`,
  ];
}

/** The last lines of the broker's logs, for the message when it does not come up. */
async function logTail(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const f of ['stdout.log', join('logs', 'server.log')]) {
    const text = await readFile(join(dir, f), 'utf8').catch(() => '');
    if (text) parts.push(`--- ${f}\n${text.split('\n').slice(-25).join('\n')}`);
  }
  return parts.join('\n');
}

/** Formats storage (with the user's SCRAM credentials), starts the broker and waits for a SCRAM login. */
export async function startPrivateKafka(opts: PrivateKafkaOptions): Promise<PrivateKafka> {
  const { dir, pki, user, password } = opts;
  const [port, controllerPort, internalPort] = [await freePort(), await freePort(), await freePort()];
  await mkdir(join(dir, 'logs'), { recursive: true });
  const keystore = join(dir, 'kafka-keystore.pem');
  // A PEM keystore: the (unencrypted PKCS#8) key and the certificate chain in one file.
  await writeFile(
    keystore,
    (await readFile(pki.serverKey, 'utf8')) + (await readFile(pki.serverCert, 'utf8')),
  );
  const props = join(dir, 'server.properties');
  const scram = 'org.apache.kafka.common.security.scram.ScramLoginModule required;';
  await writeFile(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=SASL_SSL://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort},INTERNAL://127.0.0.1:${internalPort}`,
      `advertised.listeners=SASL_SSL://127.0.0.1:${port},INTERNAL://127.0.0.1:${internalPort}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=INTERNAL',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL',
      'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
      'listener.name.sasl_ssl.ssl.keystore.type=PEM',
      `listener.name.sasl_ssl.ssl.keystore.location=${keystore}`,
      `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${user}=${jaasQuoted(password)};`,
      `listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=${scram}`,
      `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${scram}`,
      `log.dirs=${join(dir, 'data')}`,
      'num.partitions=1',
      'default.replication.factor=1',
      'min.insync.replicas=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      '',
    ].join('\n'),
  );
  await writeFile(
    join(dir, 'log4j2.properties'),
    [
      'status = warn',
      'appender.file.type = File',
      'appender.file.name = file',
      `appender.file.fileName = ${join(dir, 'logs', 'server.log')}`,
      'appender.file.layout.type = PatternLayout',
      'appender.file.layout.pattern = [%d] %p %m (%c)%n',
      'rootLogger.level = INFO',
      'rootLogger.appenderRef.file.ref = file',
      '',
    ].join('\n'),
  );

  // A cluster id is 16 random bytes in URL-safe base64; made here, that is one JVM start less. Not one
  // starting with '-': the format command would read it as an option (Kafka's own ids never do).
  let clusterId: string;
  do clusterId = randomBytes(16).toString('base64url');
  while (clusterId.startsWith('-'));
  const scramUser = `[name=${user},password=${password}]`;
  try {
    await run('java', [
      ...jvm(dir),
      'kafka.tools.StorageTool',
      'format',
      '-t',
      clusterId,
      '-c',
      props,
      '--add-scram',
      `SCRAM-SHA-256=${scramUser}`,
      '--add-scram',
      `SCRAM-SHA-512=${scramUser}`,
    ]);
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`formatting the private Kafka's storage failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`, {
      cause: err,
    });
  }

  const out = await open(join(dir, 'stdout.log'), 'w');
  const child: ChildProcess = spawn('java', [...jvm(dir), 'kafka.Kafka', props], {
    stdio: ['ignore', out.fd, out.fd],
  });
  await out.close();
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  child.on('error', () => undefined); // shows as the exit below
  const stop = async () => {
    if (exited || child.pid === undefined) return;
    process.kill(child.pid, 'SIGKILL');
    await exit;
  };

  // Ready once a SCRAM login works: the credentials come from the metadata log, loaded after the port opens.
  const what = `the private Kafka broker on 127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  while (!(await scramLoginWorks(port, pki.caFile, user, password))) {
    if (exited || Date.now() > deadline) {
      const why = exited ? 'exited during startup' : 'did not accept a SCRAM login in time';
      await stop();
      throw new Error(`${what} ${why}; its logs end:\n${await logTail(dir)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { port, plaintextPort: internalPort, stop };
}

async function scramLoginWorks(port: number, ca: string, username: string, password: string) {
  const admin = new Admin({
    clientId: 'coalmine-test-ready',
    bootstrapBrokers: [`127.0.0.1:${port}`],
    tls: { ca: await readFile(ca) },
    sasl: { mechanism: 'SCRAM-SHA-512', username, password },
    connectTimeout: 2000,
    timeout: 2000,
    retries: 0,
  });
  (admin as unknown as NodeJS.EventEmitter).on('error', () => {});
  try {
    await admin.metadata({ topics: [] });
    return true;
  } catch {
    return false;
  } finally {
    await admin.close().catch(() => {});
  }
}
