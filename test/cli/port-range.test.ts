import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { parsePortRange } from '../../src/cli/parse.js';

describe('--proxy-port-range', () => {
  it.each([
    ['61000-65535', { first: 61000, last: 65535 }],
    [' 20000-20000 ', { first: 20000, last: 20000 }],
    ['40000', { first: 40000, last: 40000 }],
  ])('parses %j', (text, want) => {
    expect(parsePortRange('--proxy-port-range', text)).toEqual(want);
  });

  it.each(['', '0-10', '10-5', '1-65536', '61000:65535', 'a-b', '-5', '1--2'])(
    'rejects %j naming the flag',
    (text) => {
      expect(() => parsePortRange('--proxy-port-range', text)).toThrow(ConfigError);
      expect(() => parsePortRange('--proxy-port-range', text)).toThrow(/--proxy-port-range/);
    },
  );
});
