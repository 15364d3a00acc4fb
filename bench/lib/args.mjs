// @ts-check
/**
 * The command line of a bench script: `--name` flags and `--name value` or `--name=value` options.
 */
/** The arguments after the script's path. */
export const argv = process.argv.slice(2);

/** Whether `--name` was given. @param {string} name */
export const flag = (name) => argv.includes(`--${name}`);

/** The value of `--name value` or `--name=value`, or undefined. @param {string} name @returns {string | undefined} */
export const value = (name) => {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  const a = /** @type {string} */ (argv[i]);
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[i + 1];
};
