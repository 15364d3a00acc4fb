import type { LogFields, Logger } from '../../src/core/log.js';

/** A Logger that keeps each line's message (and fields) in `lines`, for tests that read what was logged. */
export function lineLogger(
  lines: string[],
  records: { level: string; msg: string; fields: LogFields }[] = [],
): Logger {
  const make = (base: LogFields): Logger => {
    const at =
      (level: string) =>
      (msg: string, fields: LogFields = {}): void => {
        lines.push(msg);
        records.push({ level, msg, fields: { ...base, ...fields } });
      };
    return {
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return make({});
}
