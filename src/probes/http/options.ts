import { z } from 'zod';
import { tlsOptions } from '../tls-options.js';
import { ipProtocolOption } from '../resolve.js';

/** The most body a run may hold in memory. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** The HTTP versions a response can have, as this probe names them. */
export type HttpVersion = '1.0' | '1.1' | '2';

// YAML reads `httpVersion: 1.1` as a number, so numbers are accepted next to the strings; blackbox's
// spellings (`HTTP/1.1`, `HTTP/2.0`) are accepted so its valid_http_versions lists can be copied over.
const versionSpelling = z.union([
  z.enum(['1.0', '1.1', '2', '2.0', 'HTTP/1.0', 'HTTP/1.1', 'HTTP/2', 'HTTP/2.0']),
  z.literal([1, 1.1, 2]),
]);
export type VersionSpelling = z.output<typeof versionSpelling>;

// Node's client speaks 1.1 and 2 only, so those are what a request can ask for.
const requestVersion = z.union([
  z.enum(['1.1', '2', '2.0', 'HTTP/1.1', 'HTTP/2', 'HTTP/2.0']),
  z.literal([1.1, 2]),
]);

export function normalizeVersion(v: VersionSpelling): HttpVersion {
  const s = String(v).replace(/^HTTP\//, '');
  if (s === '1' || s === '1.0') return '1.0';
  if (s === '1.1') return '1.1';
  return '2';
}

/**
 * Compiles a user regex. Go's leading inline flags (`(?i)`, `(?s)`, `(?m)`), common in blackbox configs,
 * become JavaScript flags because Node 20's RegExp does not understand them.
 */
export function compileRegex(pattern: string): RegExp {
  const m = /^\(\?([ims]+)\)/.exec(pattern);
  return m ? new RegExp(pattern.slice(m[0].length), [...new Set(m[1])].join('')) : new RegExp(pattern);
}

function isRegex(pattern: string): boolean {
  try {
    compileRegex(pattern);
    return true;
  } catch {
    return false;
  }
}

const regexString = z.string().refine(isRegex, { message: 'not a valid regular expression' });

const jsonCondition = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .describe('Dotted path into the JSON body; array elements by index (e.g. `checks.0.status`)'),
    equals: z
      .union([z.string(), z.number(), z.boolean(), z.null()])
      .optional()
      .describe('The field must equal this value exactly (type included)'),
    matches: regexString
      .optional()
      .describe('The field, as text (objects as JSON), must match this regular expression (within 50 ms)'),
  })
  .describe('A condition on one field of a JSON body; with neither equals nor matches, the field must exist');
export type JsonCondition = z.output<typeof jsonCondition>;

// blackbox_exporter's http_header_match_spec; like it, an empty header name or regexp is refused.
const headerMatch = z
  .strictObject({
    header: z.string().min(1, 'must name a header').describe('Response header name (any case)'),
    regexp: regexString
      .min(1, 'must be a regular expression, not empty')
      .describe('Regular expression tried on each value of the header (within 50 ms each)'),
    allowMissing: z
      .boolean()
      .default(false)
      .describe('When the response lacks the header, pass this check instead of failing the probe'),
  })
  .describe('A check on one response header');
export type HeaderMatch = z.output<typeof headerMatch>;

export const httpOptions = z.strictObject({
  method: z
    .string()
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not an HTTP method token')
    .default('GET')
    .describe('Request method, e.g. GET, HEAD, POST'),
  headers: z
    .record(z.string(), z.string())
    .default({})
    .describe('Request headers; Host overrides the host sent (the connection still goes to the URL host)'),
  body: z.string().optional().describe('Request body'),
  followRedirects: z.boolean().default(true).describe('Follow 3xx responses that carry a Location'),
  maxRedirects: z
    .number()
    .int('must be a whole number from 0 to 100')
    .min(0, 'must be from 0 to 100')
    .max(100, 'must be from 0 to 100')
    .default(10)
    .describe('Most redirects to follow, 0 to 100; the next 3xx is then judged as the final response'),
  validStatusCodes: z
    .array(z.number().int().min(100).max(599))
    .default([])
    .describe('Status codes that count as success; empty means any 2xx'),
  httpVersion: requestVersion
    .default('1.1')
    .describe('Protocol to ask for: 1.1, or 2 (ALPN h2 over TLS, prior-knowledge h2c over plain http)'),
  validHttpVersions: z
    .array(versionSpelling)
    .default([])
    .describe('Response HTTP versions that count as success (1.0, 1.1, 2); empty means any'),
  failIfBodyMatchesRegexp: z
    .array(regexString)
    .default([])
    .describe(
      'Fail when the body matches any of these regular expressions. Each gets at most 50 ms on a body (up to maxBodyBytes); one that takes longer fails the probe',
    ),
  failIfBodyNotMatchesRegexp: z
    .array(regexString)
    .default([])
    .describe(
      'Fail when the body does not match every one of these regular expressions (each within 50 ms, as above)',
    ),
  failIfHeaderMatchesRegexp: z
    .array(headerMatch)
    .default([])
    .describe(
      'Fail when any value of the header (each header line is one value) matches its regexp, or the header is missing and allowMissing is not set (as blackbox_exporter)',
    ),
  failIfHeaderNotMatchesRegexp: z
    .array(headerMatch)
    .default([])
    .describe(
      'Fail when no value of the header matches its regexp, or the header is missing and allowMissing is not set (as blackbox_exporter)',
    ),
  jsonConditions: z
    .array(jsonCondition)
    .default([])
    .describe('Conditions on fields of a JSON body; all must hold'),
  maxBodyBytes: z
    .number()
    .int('must be a whole number from 1 to 67108864 (64 MiB)')
    .min(1, 'must be from 1 to 67108864 (64 MiB)')
    .max(MAX_BODY_BYTES, 'must be from 1 to 67108864 (64 MiB)')
    .default(1024 * 1024)
    .describe(
      'Most body bytes to read (after decompression), 1 to 67108864 (64 MiB); a body check on a larger body fails',
    ),
  ipProtocol: ipProtocolOption,
  tls: tlsOptions.describe('TLS settings for https targets').prefault({}),
});

export type HttpOptions = z.output<typeof httpOptions>;
export type TlsOptions = HttpOptions['tls'];
