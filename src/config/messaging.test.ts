import { describe, expect, it } from 'vitest';
import { parseConfig } from './load.js';

const config = `
canaries:
  - { name: c1, transport: "redis://127.0.0.1:6379", secretEnv: PAIR_SECRET }
coalminers:
  - { name: m1, transport: "redis://127.0.0.1:6379", register: [c1], secretEnv: PAIR_SECRET }
`;

describe('a shared secret for a canary and its coalminers', () => {
  it('is read from the variable secretEnv names when the config loads', () => {
    const cfg = parseConfig(config, 'agent.yaml', { PAIR_SECRET: '0123456789abcdef0123' });
    expect(cfg.messaging.canaries[0]!.secret).toBe('0123456789abcdef0123');
    expect(cfg.messaging.coalminers[0]!.secret).toBe('0123456789abcdef0123');
  });

  it('must be long enough not to be guessed', () => {
    expect(() => parseConfig(config, 'agent.yaml', { PAIR_SECRET: 'short' })).toThrow(
      /canaries\[0\]\.secretEnv: the secret in PAIR_SECRET is 5 characters; use 16 or more/,
    );
  });
});
