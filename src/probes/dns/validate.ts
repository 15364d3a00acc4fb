import { z } from 'zod';
import { clipText } from '../../core/log.js';
import { isValidRegex, RegexTimeLimitError, withRegexTimeLimit } from '../bounded-regex.js';

const regexpList = (what: string) =>
  z
    .array(z.string().refine(isValidRegex, { message: 'not a valid JavaScript regular expression' }))
    .default([])
    .describe(what);

/** blackbox_exporter's `validate_*_rrs` block, matched against each record's zone-file text form. */
export const recordValidationOption = z
  .strictObject({
    failIfMatchesRegexp: regexpList('Fail if any record matches any of these regular expressions'),
    failIfAllMatchRegexp: regexpList(
      'Fail if every record matches one of these (ignored when there are none)',
    ),
    failIfNotMatchesRegexp: regexpList('Fail if any record does not match each of these'),
    failIfNoneMatchesRegexp: regexpList(
      'Fail if no record matches each of these (ignored when there are none)',
    ),
  })
  .optional();

export type RecordValidation = NonNullable<z.output<typeof recordValidationOption>>;

/**
 * Checks one section's records (as text) against a validation block, with blackbox_exporter's semantics.
 * Returns why it fails, or undefined when it passes. Each expression gets the regex time limit over all
 * the records (see bounded-regex.ts); one that runs out fails the check.
 */
export function checkRecords(
  section: string,
  records: readonly string[],
  v: RecordValidation,
): string | undefined {
  try {
    return checkRecordsOrThrow(section, records, v);
  } catch (err) {
    if (err instanceof RegexTimeLimitError) return `${section} records: ${err.message}`;
    throw err;
  }
}

function checkRecordsOrThrow(
  section: string,
  records: readonly string[],
  v: RecordValidation,
): string | undefined {
  // A TXT record can hold 64 KiB: a message shows the start of one.
  const show = (rr: string) => JSON.stringify(clipText(rr, 200));
  for (const source of v.failIfMatchesRegexp) {
    const re = new RegExp(source);
    const hit = withRegexTimeLimit(source, () => records.find((rr) => re.test(rr)));
    if (hit !== undefined) return `${section} record ${show(hit)} matches /${source}/ (failIfMatchesRegexp)`;
  }
  for (const source of v.failIfAllMatchRegexp) {
    const re = new RegExp(source);
    if (records.length > 0 && withRegexTimeLimit(source, () => records.every((rr) => re.test(rr)))) {
      return `every ${section} record matches /${source}/ (failIfAllMatchRegexp)`;
    }
  }
  for (const source of v.failIfNotMatchesRegexp) {
    const re = new RegExp(source);
    const miss = withRegexTimeLimit(source, () => records.find((rr) => !re.test(rr)));
    if (miss !== undefined)
      return `${section} record ${show(miss)} does not match /${source}/ (failIfNotMatchesRegexp)`;
  }
  for (const source of v.failIfNoneMatchesRegexp) {
    const re = new RegExp(source);
    if (records.length > 0 && !withRegexTimeLimit(source, () => records.some((rr) => re.test(rr)))) {
      return `no ${section} record matches /${source}/ (failIfNoneMatchesRegexp)`;
    }
  }
  return undefined;
}
