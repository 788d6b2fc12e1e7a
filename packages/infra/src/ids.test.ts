import { isCanonicalUuid, isCanonicalUuidV4, uuidv4, uuidv7 } from './ids.js';
import { uniquePrefix } from './testing/index.js';

describe('ids', () => {
  it('makes time-ordered UUIDv7 and canonical UUIDv4', () => {
    const first = uuidv7();
    const second = uuidv7();
    expect(first < second || first.slice(0, 13) === second.slice(0, 13)).toBe(true);
    expect(first[14]).toBe('7');
    expect(isCanonicalUuidV4(uuidv4())).toBe(true);
    expect(isCanonicalUuid(first)).toBe(true);
  });

  it.each(['abc', 'AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA', '123e4567-e89b-12d3-a456-426614174000', `${uuidv4()}x`])(
    'rejects %s as a tenant id',
    (value) => {
      expect(isCanonicalUuidV4(value)).toBe(false);
    },
  );

  it('gives each test data a unique UUIDv7 prefix', () => {
    expect(uniquePrefix('user')).toMatch(/^user-[0-9a-f-]{36}$/);
    expect(uniquePrefix()).not.toBe(uniquePrefix());
  });
});
