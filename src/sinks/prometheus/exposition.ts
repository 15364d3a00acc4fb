import { setImmediate as nextTurn } from 'node:timers/promises';
import { Registry, type Metric, type MetricObject, type MetricValue } from 'prom-client';

/**
 * The Prometheus text exposition (format 0.0.4) of a prom-client registry, rendered in slices that let
 * the event loop run between them.
 *
 * prom-client renders a whole registry in one synchronous stretch (`registry.metrics()`: 850 ms at
 * 10,000 targets, 2.5 s at 20,000, during which no probe starts), and each family's `get()` builds an
 * object per series line first. The families with a series per target are therefore written here as
 * text (TextFamily): they keep their numbers in place and print them, a target at a time, straight into
 * the output. They are still registered in the prom-client registry (an adapter, textFamilyMetric), so
 * the registry's order, its name checks and `registry.metrics()` keep working, and every other family
 * (Node's, the scheduler's, messaging) is rendered by prom-client as before.
 */

/** One metric family written as text by its owner rather than by prom-client. */
export interface TextFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  /**
   * The family's series lines, each ending in '\n', in pieces of bounded work (a target's lines at a
   * time): the renderer may pause between two pieces, so a piece must stand on its own.
   */
  lines(): Iterable<string>;
  /** What `registry.resetMetrics()` does to it. */
  reset(): void;
}

/** How long the renderer works before it lets the event loop run, by default. */
export const DEFAULT_SLICE_MS = 5;

/** A chunk is handed on once it holds this much text, within a slice too (16 KiB: 64 KiB held more text
 * through young-generation collections, and at 10,000 targets led to more old-generation ones). */
const CHUNK_CHARS = 16 * 1024;

const FAMILY = Symbol('coalmine.textFamily');

type Adapter = Metric & { [FAMILY]: TextFamily };

/** Escapes a HELP text or metric name as the text format (and prom-client) does. */
export function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Escapes a label value for `name="value"`. */
export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** `name="value"`, escaped. */
export function labelPair(name: string, value: string): string {
  return `${name}="${escapeLabelValue(value)}"`;
}

/** A sample value as the text format writes it (prom-client's forms; NaN as the format spells it). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return `${v}`;
}

function header(f: { name: string; help: string; type: string }): string {
  const name = escapeHelp(f.name);
  return `# HELP ${name} ${escapeHelp(f.help)}\n# TYPE ${name} ${f.type}\n`;
}

/**
 * Registers `family` in `registry`, where prom-client keeps it in order with its own metrics and
 * refuses a second family of the same name.
 */
export function registerTextFamily(registry: Registry, family: TextFamily): void {
  const adapter = {
    [FAMILY]: family,
    name: family.name,
    help: family.help,
    type: family.type,
    aggregator: 'sum',
    get: async () => ({
      name: family.name,
      help: family.help,
      type: family.type,
      aggregator: 'sum',
      values: parseLines(family),
    }),
    reset: () => family.reset(),
  };
  // prom-client types a registered metric as one of its own classes; the registry itself reads only
  // name, help, type, get() and reset(), which the adapter has.
  registry.registerMetric(adapter as unknown as Metric);
}

function textFamilyOf(metric: MetricObject): TextFamily | undefined {
  return (metric as Partial<Adapter>)[FAMILY];
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/**
 * The family's series as prom-client's value objects, read back from its own text: for the registry's
 * `metrics()` and `getMetricsAsJSON()` (tests, tools), so there is one way a series is written. Not
 * on the scrape path.
 */
function parseLines(family: TextFamily): MetricValue<string>[] {
  const values: MetricValue<string>[] = [];
  for (const piece of family.lines()) {
    for (const line of piece.split('\n')) {
      if (line === '') continue;
      const m = LINE.exec(line);
      if (!m) throw new Error(`${family.name}: cannot read back its own line ${JSON.stringify(line)}`);
      const labels: Record<string, string> = {};
      for (const [, name, raw] of (m[2] ?? '').matchAll(LABEL))
        labels[name!] = raw!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      const text = m[3]!;
      const value = text === '+Inf' ? Infinity : text === '-Inf' ? -Infinity : Number(text);
      values.push({ metricName: m[1]!, labels, value } as MetricValue<string>);
    }
  }
  return values;
}

export interface ExpositionOptions {
  /** Work at most about this long before letting the event loop run (default DEFAULT_SLICE_MS). */
  sliceMs?: number;
}

/**
 * The registry's exposition, the same text as `registry.metrics()`, in chunks: the generator pauses
 * for one turn of the event loop (setImmediate, so timers and sockets run) whenever it has worked
 * `sliceMs`, and yields what it wrote up to then. Series of one target are written together; a scrape
 * spread over several turns may see one target's run and not another's, as any scrape may.
 */
export async function* exposition(registry: Registry, opts: ExpositionOptions = {}): AsyncGenerator<string> {
  if (registry.contentType !== Registry.PROMETHEUS_CONTENT_TYPE)
    throw new Error(`the streamed exposition writes ${Registry.PROMETHEUS_CONTENT_TYPE} only`);
  const sliceMs = opts.sliceMs ?? DEFAULT_SLICE_MS;
  let parts: string[] = [];
  let sliceStart = performance.now();
  const spent = () => performance.now() - sliceStart >= sliceMs;
  const metrics = registry.getMetricsAsArray();
  let first = true;
  for (const metric of metrics) {
    // Removed from the registry while the render paused: no longer exported.
    if ((registry.getSingleMetric(metric.name) as unknown) !== metric) continue;
    // prom-client separates families by an empty line.
    if (!first) parts.push('\n');
    first = false;
    const family = textFamilyOf(metric);
    if (family) {
      parts.push(header(family));
      let n = 0;
      let size = 0;
      for (const piece of family.lines()) {
        parts.push(piece);
        size += piece.length;
        // Reading the clock costs more than a target's lines: look every 16 pieces.
        if ((++n & 15) !== 0) continue;
        if (spent()) {
          yield parts.join('');
          parts = [];
          size = 0;
          await nextTurn();
          sliceStart = performance.now();
        } else if (size >= CHUNK_CHARS) {
          // Out to the socket without waiting for the slice to end: text held until then is copied by
          // every young-generation collection it survives.
          yield parts.join('');
          parts = [];
          size = 0;
        }
      }
    } else {
      parts.push(await registry.getSingleMetricAsString(metric.name), '\n');
    }
    if (spent()) {
      yield parts.join('');
      parts = [];
      await nextTurn();
      sliceStart = performance.now();
    }
  }
  if (first) parts.push('\n');
  if (parts.length > 0) yield parts.join('');
}

/** The whole exposition as one string (tests, tools); the scrape path streams `exposition`. */
export async function renderExposition(registry: Registry, opts: ExpositionOptions = {}): Promise<string> {
  let text = '';
  for await (const chunk of exposition(registry, opts)) text += chunk;
  return text;
}
