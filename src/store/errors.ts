import { CoalmineError } from '../core/errors.js';

/** A store spec that does not parse, or a store that cannot be opened; the message says what to fix. */
export class StoreError extends CoalmineError {}
