export interface TcpProxy {
  /** Port the proxy listens on (127.0.0.1). */
  port: number;
  /** Delay added to every chunk in each direction, in ms (changeable while running). */
  delayMs: { toServer: number; toClient: number };
  /**
   * How long each delayed chunk was actually held, in ms, with when it left (nowMs()): on a loaded
   * machine the proxy itself runs late, so this, not delayMs, is the delay a test controls.
   */
  readonly held: { toServer: { at: number; ms: number }[]; toClient: { at: number; ms: number }[] };
  /** Drops every connection and refuses new ones until `up()`: a broker outage, as the client sees it. */
  down(): void;
  up(): void;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

/** Wall-clock ms with sub-millisecond resolution, comparable between processes. */
export function nowMs(): number;

/**
 * A TCP proxy of the tests' own between a client and a real server on loopback, to inject a known delay
 * (each chunk is held for delayMs, order kept) or an outage. `tc netem` is not available here.
 */
export function startTcpProxy(target: { host: string; port: number }, delayMs?: number): Promise<TcpProxy>;
