import type { Socket } from 'node:net';
import { constants } from 'node:os';
import type { Clock } from '../core/clock.js';
import { loadIcmpAddon } from './icmp/native.js';

/** Where a TCP connect time came from: the kernel's handshake RTT, or our own clock around connect. */
export type ConnectTiming = 'kernel' | 'user';

/** What TCP_INFO says about a connected socket. */
export interface KernelTcpInfo {
  /** TCP state (1 = ESTABLISHED, 2 = SYN_SENT, 8 = CLOSE_WAIT...). */
  state: number;
  /** Smoothed RTT in µs; right after the handshake, the kernel's SYN -> SYN/ACK sample. */
  rttUs: number;
  rttVarUs: number;
  /** Minimum RTT seen, µs; undefined on kernels older than 4.10. */
  minRttUs: number | undefined;
  /** Segments retransmitted on this connection, the SYN included. */
  totalRetrans: number;
}

const TCP_SYN_SENT = 2;
// One buffer for every call: the addon fills it synchronously and we read it before returning.
const slots = new Float64Array(5);

type TcpInfoFn = (fd: number, out: Float64Array) => number;
let tcpInfoFn: TcpInfoFn | null | undefined;

/** The addon's tcpInfo, loaded once; null when there is none (not Linux, not built, an older build). */
function addonTcpInfo(): TcpInfoFn | null {
  if (tcpInfoFn === undefined) {
    const load = loadIcmpAddon();
    tcpInfoFn = load.ok && typeof load.addon.tcpInfo === 'function' ? load.addon.tcpInfo : null;
  }
  return tcpInfoFn;
}

/**
 * The file descriptor under a connected net.Socket, or undefined where there is none to read (not
 * Linux, a socket not backed by a TCP handle). `_handle.fd` is Node's own (libuv's uv_fileno) and is
 * undocumented, hence this one typed place that reads it and checks what it got.
 */
export function socketFd(socket: Socket): number | undefined {
  if (process.platform !== 'linux') return undefined;
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

/** TCP_INFO for a connected socket; undefined when the addon or the descriptor is unavailable. */
export function kernelTcpInfo(socket: Socket): KernelTcpInfo | undefined {
  const fn = addonTcpInfo();
  if (!fn) return undefined;
  const fd = socketFd(socket);
  if (fd === undefined || fn(fd, slots) !== 0) return undefined;
  return {
    state: slots[0]!,
    rttUs: slots[1]!,
    rttVarUs: slots[2]!,
    minRttUs: slots[3]! < 0 ? undefined : slots[3]!,
    totalRetrans: slots[4]!,
  };
}

/**
 * The network's connect time for a socket that has just emitted 'connect': the kernel's handshake RTT
 * (SYN sent -> SYN/ACK received, timed in the TCP stack), in ns. Undefined when it cannot be had, and
 * then the caller keeps its user-space time: no addon, not Linux, or no valid sample because the SYN
 * was retransmitted (the kernel then takes no sample, and the user-space time, retransmit wait
 * included, is the honest figure).
 *
 * Why not our own clock: on an idle machine the code between "connect called" and "'connect' seen"
 * runs from cold caches and takes 100-400 µs on loopback, while the handshake itself takes ~30 µs.
 * Only the kernel's figure describes the target.
 */
export function kernelConnectNs(socket: Socket): bigint | undefined {
  const info = kernelTcpInfo(socket);
  // Any state past SYN_SENT holds the handshake's sample, even when the peer has already closed.
  if (!info || info.state === TCP_SYN_SENT || info.rttUs <= 0 || info.totalRetrans > 0) return undefined;
  return BigInt(Math.round(info.rttUs)) * 1000n;
}

interface PendingConnect {
  resolve(r: ConnectOnly): void;
  reject(err: unknown): void;
  startNs: bigint;
  clock: Clock;
  signal: AbortSignal;
  onAbort: () => void;
  label: string;
}

/** The result of a connect-only probe: the connect phase and where its time came from. */
export interface ConnectOnly {
  connectNs: bigint;
  timing: ConnectTiming;
}

interface NativeConnector {
  connect(family: 4 | 6, address: string, port: number): number;
  cancel(id: number): void;
}

const pending = new Map<number, PendingConnect>();
let connector: NativeConnector | null | undefined;
let errnoNames: Map<number, string> | undefined;

function errnoName(errno: number): string {
  errnoNames ??= new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));
  return errnoNames.get(errno) ?? `E${errno}`;
}

function onNativeConnect(id: number, errno: number, rttUs: number, totalRetrans: number): void {
  const p = pending.get(id);
  if (!p) return;
  pending.delete(id);
  p.signal.removeEventListener('abort', p.onAbort);
  const userNs = p.clock.nowNs() - p.startNs;
  if (errno !== 0) {
    const code = errnoName(errno);
    p.reject(
      Object.assign(new Error(`connect ${code} ${p.label}`), { code, errno: -errno, syscall: 'connect' }),
    );
    return;
  }
  // No kernel sample (a retransmitted SYN, see kernelConnectNs): the user-space time is the honest one.
  const kernel = rttUs > 0 && totalRetrans === 0;
  p.resolve(
    kernel
      ? { connectNs: BigInt(Math.round(rttUs)) * 1000n, timing: 'kernel' }
      : { connectNs: userNs, timing: 'user' },
  );
}

function nativeConnector(): NativeConnector | null {
  if (connector === undefined) {
    const load = loadIcmpAddon();
    const a = load.ok ? load.addon : undefined;
    if (a?.tcpConnectInit && a.tcpConnect && a.tcpConnectCancel) {
      a.tcpConnectInit(onNativeConnect);
      connector = { connect: a.tcpConnect, cancel: a.tcpConnectCancel };
    } else {
      connector = null;
    }
  }
  return connector;
}

/**
 * Connects to address:port and closes the connection at once, for a probe that needs nothing but the
 * connect: the addon owns the socket, so no net.Socket (and none of its stream machinery, which costs
 * more CPU than the connect itself) is made. Resolves with the kernel's handshake RTT (or the
 * user-space time when the kernel has no sample); rejects with a Node-style error (`code` ECONNREFUSED...)
 * or the signal's reason, having closed the socket. Returns undefined when the addon is unavailable:
 * the caller then connects with net.Socket.
 */
export function connectOnly(
  family: 4 | 6,
  address: string,
  port: number,
  clock: Clock,
  signal: AbortSignal,
): Promise<ConnectOnly> | undefined {
  const native = nativeConnector();
  if (!native) return undefined;
  return new Promise<ConnectOnly>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const startNs = clock.nowNs();
    let id: number;
    try {
      id = native.connect(family, address, port);
    } catch (err) {
      return reject(err);
    }
    const onAbort = () => {
      pending.delete(id);
      native.cancel(id);
      reject(signal.reason);
    };
    const label = family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
    pending.set(id, { resolve, reject, startNs, clock, signal, onAbort, label });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
