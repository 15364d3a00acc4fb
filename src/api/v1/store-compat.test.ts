import { describe, expectTypeOf, it } from 'vitest';
import type { ResultStore } from '../../store/types.js';
import type { ApiStore } from './context.js';
import type { MemoryStore } from '../../../test/support/memory-context.js';

// Checked by `tsc` (npm run typecheck): the agent hands its ResultStore to the API as it is.
describe('ApiStore', () => {
  it('is satisfied by the results store and by the in-memory store', () => {
    expectTypeOf<ResultStore>().toExtend<ApiStore>();
    expectTypeOf<MemoryStore>().toExtend<ApiStore>();
  });
});
