import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProbeError } from '../../core/types.js';

export type IcmpSocketMode = 'auto' | 'dgram' | 'raw';

/**
 * Called for every ICMP message that concerns the socket: echo replies carrying its identifier and,
 * for errors (unreachable, time exceeded...), the identifier and sequence of the request they quote.
 * `rxNs` is the kernel's receive time (CLOCK_REALTIME ns); `hopLimit` is -1 when unknown; `payload`
 * is null for errors.
 */
export type IcmpPacketListener = (
  source: string,
  type: number,
  code: number,
  id: number,
  seq: number,
  payload: Buffer | null,
  rxNs: bigint,
  hopLimit: number,
) => void;

/** One kernel ICMP socket (native/icmp/icmp.c). */
export interface IcmpNativeSocket {
  readonly mode: 'dgram' | 'raw';
  /** Echo identifier: chosen by the kernel for datagram sockets, by the addon for raw ones. */
  readonly id: number;
  readonly family: 4 | 6;
  readonly closed: boolean;
  /** Sends an echo request; returns CLOCK_REALTIME ns read right before sendto. Throws with `code` (errno name). */
  send(address: string, seq: number, payload: Uint8Array): bigint;
  /** Stops polling and closes the descriptor. Idempotent. */
  close(): void;
}

export interface IcmpAddon {
  /**
   * getsockopt(TCP_INFO) on a connected TCP socket (native/tcpinfo/tcpinfo.c), written into `out`:
   * [state, rttUs, rttVarUs, minRttUs (-1 unknown), totalRetrans]. Returns 0 or an errno number.
   * Absent from builds older than the function.
   */
  tcpInfo?: (fd: number, out: Float64Array) => number;
  /** Sets the one callback every tcpConnect reports to: (id, errno, rttUs, totalRetrans). */
  tcpConnectInit?: (
    callback: (id: number, errno: number, rttUs: number, totalRetrans: number) => void,
  ) => void;
  /**
   * Connects a socket the addon owns and closes it once connected (native/tcpinfo/connect.c); returns
   * an id for the callback. Throws with `code` (errno name) when connect fails at once.
   */
  tcpConnect?: (family: 4 | 6, address: string, port: number) => number;
  /** Closes a pending tcpConnect; its callback will not be called. */
  tcpConnectCancel?: (id: number) => void;
  /**
   * Installs the fatal-signal logger for one of SIGBUS, SIGSEGV, SIGILL, SIGFPE (native/fatalsignal/):
   * on that signal it writes `{"time":"<now>` + `tail` to fd 2 and dies of the signal. Returns false
   * when the process ignores the signal (left so). See src/cli/fatal-signals.ts.
   */
  fatalSignalLog?: (signal: number, tail: string) => boolean;
  IcmpSocket: new (
    family: 4 | 6,
    mode: IcmpSocketMode,
    options: { ttl?: number; dontFragment?: boolean },
    onPacket: IcmpPacketListener,
  ) => IcmpNativeSocket;
}

export const ADDON_FILE = join('build', 'Release', 'coalmine_icmp.node');

export type AddonLoad = { ok: true; addon: IcmpAddon } | { ok: false; error: ProbeError };

const cache = new Map<string, AddonLoad>();

/** The project root: the nearest folder above this module that holds binding.gyp (src/ or dist/src/). */
function findAddonPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp'))) return join(dir, ADDON_FILE);
    const parent = dirname(dir);
    if (parent === dir) return join(process.cwd(), ADDON_FILE);
    dir = parent;
  }
}

/**
 * Loads the native ICMP module once. Never throws: a missing or broken build becomes an
 * `unsupported` error that says how to build it.
 */
export function loadIcmpAddon(path: string = findAddonPath()): AddonLoad {
  const cached = cache.get(path);
  if (cached) return cached;
  let result: AddonLoad;
  if (process.platform !== 'linux') {
    result = {
      ok: false,
      error: { code: 'unsupported', message: `ICMP probes need Linux; this is ${process.platform}` },
    };
  } else if (!existsSync(path)) {
    result = {
      ok: false,
      error: {
        code: 'unsupported',
        message:
          'the native ICMP module is not built: run `npm run build:native` (needs a C compiler, make and Python 3)',
      },
    };
  } else {
    try {
      const addon = createRequire(import.meta.url)(path) as IcmpAddon;
      result = { ok: true, addon };
    } catch (err) {
      result = {
        ok: false,
        error: {
          code: 'unsupported',
          message: `the native ICMP module at ${path} does not load (${(err as Error).message}): rebuild it with \`npm run build:native\``,
        },
      };
    }
  }
  cache.set(path, result);
  return result;
}

const FIX_RAW = 'root or CAP_NET_RAW (sudo setcap cap_net_raw+ep "$(command -v node)")';
const FIX_DGRAM = "unprivileged ICMP sockets (sudo sysctl -w net.ipv4.ping_group_range='0 2147483647')";

/** Explains why no ICMP socket could be opened, and what to do about it. */
export function socketOpenError(err: unknown, mode: IcmpSocketMode, family: 4 | 6): ProbeError {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : String(err);
  const withCause = (pe: ProbeError): ProbeError => (code ? { ...pe, cause: code } : pe);
  if (code === 'EAFNOSUPPORT' || code === 'EPROTONOSUPPORT' || code === 'ESOCKTNOSUPPORT') {
    return withCause({
      code: 'unsupported',
      message: `this host does not support ICMP over IPv${family} (${message})`,
    });
  }
  if (code === 'EPERM' || code === 'EACCES') {
    const need =
      mode === 'raw'
        ? `raw ICMP sockets need ${FIX_RAW}`
        : mode === 'dgram'
          ? `datagram ICMP sockets need ${FIX_DGRAM}`
          : `ICMP needs ${FIX_RAW} or ${FIX_DGRAM}`;
    return withCause({ code: 'permission', message: `${need}; ${message}` });
  }
  return withCause({ code: 'error', message });
}
