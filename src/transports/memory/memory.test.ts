import { transportConformance } from '../../../test/support/transport-conformance.js';
import { MemoryTransport } from './index.js';

transportConformance('memory', {
  make: () => new MemoryTransport('memory://conformance'),
  acks: true,
  settleMs: 0,
});
