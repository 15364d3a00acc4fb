import type { Clock } from './clock.js';

export interface Job {
  id: string;
  intervalMs: number;
  run(): Promise<unknown>;
}

export interface SchedulerEvents {
  /** How late a run started relative to its slot, in seconds (scheduled runs only). */
  lateness?(id: string, seconds: number): void;
  /** A slot that was not run: the previous run was still going, or the agent was stalled past it. */
  skipped?(id: string, reason: 'overlap' | 'stalled'): void;
}

interface Entry {
  job: Job;
  due: number;
  running: Promise<unknown> | undefined;
  removed: boolean;
}

/** FNV-1a of the id, so a target's start offset is the same on every start of the agent. */
function stableHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Where in its interval a job's slots fall, in ms after the scheduler added it: the same for the same id
 * on every start, spread over the interval across ids (Prometheus offsets each scrape target alike).
 */
export function startOffsetMs(id: string, intervalMs: number): number {
  return stableHash(id) % Math.max(1, Math.floor(intervalMs));
}

/**
 * Launches may run ahead of the jobs' own mean rate by this factor: enough that the bunching hash
 * offsets give on their own (a Poisson-like spread) is never held back, while the runs that fell due
 * together during a stall start over a few hundred milliseconds instead of in one tick.
 */
const CATCH_UP_FACTOR = 4;
/** The budget holds this many milliseconds of launches at the catch-up rate, and never fewer than
 * MIN_BURST, so a small config is never held back at all. */
const BURST_WINDOW_MS = 10;
const MIN_BURST = 8;

/**
 * Runs every job on its own interval from one timer and a min-heap of due times. Slots are fixed
 * (start + offset + k x interval), so a late run never pushes later runs back; start offsets are
 * spread over the interval by a hash of the id; a job never runs twice at once.
 *
 * Launches draw from a budget that refills at CATCH_UP_FACTOR x the jobs' mean launch rate. After an
 * event-loop stall (a long GC, a slow synchronous task, the process descheduled), every run whose slot
 * passed would otherwise start in the same tick: hundreds of connections opened at once against what
 * is often one server, which is how a scheduler makes the timeouts it then reports. A run held back by
 * the budget starts a little later (its lateness says so) and keeps its slots; none is dropped.
 */
export class Scheduler {
  private readonly heap: Entry[] = [];
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Infinity;
  private started = false;
  /** Sum of 1 / interval over the jobs: their mean launches per ms. */
  private jobsPerMs = 0;
  private tokens = MIN_BURST;
  private tokensAt = -Infinity;

  constructor(
    private readonly clock: Clock,
    private readonly events: SchedulerEvents = {},
  ) {}

  private nowMs(): number {
    return Number(this.clock.nowNs()) / 1e6;
  }

  /**
   * Schedules a job: its slots are `originMs` (on this scheduler's clock; default now) + its offset + k x
   * interval, from the first that is not before `notBeforeMs`. A probe worker thread passes the agent's
   * start as the origin, so its targets keep the slots they would have had on the main thread, and after
   * a restart the time of the crash as notBefore: the slots it was down for then count as skipped.
   */
  add(job: Job, at: { originMs?: number; notBeforeMs?: number } = {}): void {
    if (this.entries.has(job.id)) throw new Error(`job ${job.id} is already scheduled`);
    if (!(job.intervalMs > 0)) throw new Error(`job ${job.id}: interval must be > 0`);
    let due = (at.originMs ?? this.nowMs()) + startOffsetMs(job.id, job.intervalMs);
    if (at.notBeforeMs !== undefined && due < at.notBeforeMs)
      due += Math.ceil((at.notBeforeMs - due) / job.intervalMs) * job.intervalMs;
    const entry: Entry = {
      job,
      due,
      running: undefined,
      removed: false,
    };
    this.entries.set(job.id, entry);
    this.jobsPerMs += 1 / job.intervalMs;
    this.push(entry);
    if (this.started) this.arm();
  }

  remove(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    e.removed = true;
    this.entries.delete(id);
    this.jobsPerMs = Math.max(0, this.jobsPerMs - 1 / e.job.intervalMs);
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  start(): void {
    this.started = true;
    this.arm();
  }

  /** Stops scheduling; runs already going finish on their own (their own timeouts bound them). */
  stop(): void {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }

  /** Runs a job now, outside its schedule. If it is running already, waits for that run instead. */
  runNow(id: string): Promise<unknown> {
    const e = this.entries.get(id);
    if (!e) return Promise.reject(new Error(`no job ${id}`));
    return e.running ?? this.launch(e);
  }

  /** Resolves when every running job has finished. */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.entries.values()].map((e) => e.running));
  }

  private launch(e: Entry): Promise<unknown> {
    const p = e.job
      .run()
      .catch(() => undefined)
      .finally(() => {
        if (e.running === p) e.running = undefined;
      });
    e.running = p;
    return p;
  }

  private get burst(): number {
    return Math.max(MIN_BURST, this.jobsPerMs * CATCH_UP_FACTOR * BURST_WINDOW_MS);
  }

  /** Adds what the launch budget earned since it was last read, up to its cap. */
  private refill(now: number): void {
    const earned = (now - this.tokensAt) * this.jobsPerMs * CATCH_UP_FACTOR;
    this.tokens = Math.min(this.burst, this.tokens + (Number.isFinite(earned) ? earned : Infinity));
    this.tokensAt = now;
  }

  private arm(): void {
    if (!this.started) return;
    const top = this.heap[0];
    if (!top) return;
    let due = top.due;
    // A spent budget: wake when the next launch has been earned, not before.
    if (this.tokens < 1 && this.jobsPerMs > 0)
      due = Math.max(due, this.tokensAt + (1 - this.tokens) / (this.jobsPerMs * CATCH_UP_FACTOR));
    if (due >= this.timerDue && this.timer) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = due;
    const delay = Math.max(0, due - this.nowMs());
    this.timer = setTimeout(() => this.tick(), Math.ceil(delay));
    this.timer.unref?.();
  }

  private tick(): void {
    this.timer = undefined;
    this.timerDue = Infinity;
    let now = this.nowMs();
    this.refill(now);
    for (let top = this.heap[0]; top && top.due <= now + 0.5; top = this.heap[0]) {
      if (top.removed) {
        this.pop();
        continue;
      }
      // The budget is spent: the rest of the due runs wait for it in the heap, in due order.
      if (!top.running && this.tokens < 1) break;
      this.pop();
      // Each launch runs some of the job synchronously (a probe opens its socket), so one tick that
      // launches many jobs starts the last ones later than it began: read the clock per job, or their
      // lateness would be under-reported.
      now = this.nowMs();
      this.events.lateness?.(top.job.id, Math.max(0, now - top.due) / 1000);
      if (top.running) this.events.skipped?.(top.job.id, 'overlap');
      else {
        this.tokens -= 1;
        void this.launch(top);
      }
      top.due += top.job.intervalMs;
      if (top.due <= now) {
        const missed = Math.ceil((now - top.due) / top.job.intervalMs);
        for (let i = 0; i < missed; i++) this.events.skipped?.(top.job.id, 'stalled');
        top.due += missed * top.job.intervalMs;
        if (top.due <= now) top.due += top.job.intervalMs;
      }
      this.push(top);
    }
    this.arm();
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.due <= h[i]!.due) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  private pop(): Entry | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]!.due < h[m]!.due) m = l;
        if (r < h.length && h[r]!.due < h[m]!.due) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}
