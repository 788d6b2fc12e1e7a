/**
 * Lockout across instances and under parallel guessing (issue #10): two KMS instances on one database
 * count the same failures, each in one statement, so eight wrong passwords sent at once, half to each
 * instance, lock the username (max 3); the right password is then refused as locked on both, until the
 * lockout is over. A success clears the count.
 */
import { beforeAll, expect, it } from '@jest/globals';
import { hashPassword } from '@cryptoutil/infra';
import { describeEachDatabase } from '@cryptoutil/infra/testing';
import { KMS_MIGRATIONS } from '../src/data/schema.js';
import { LoginRefused, createPasswordLogin, type PasswordLogin } from '../src/domain/password-login.js';
import { buildRealms, realmFileSchema } from '../src/domain/realm.js';

const PASSWORD = 'lockout-password-0123';

describeEachDatabase('KMS sign-in lockout shared by instances', (database) => {
  let instances: PasswordLogin[];
  let clock = Date.now();
  beforeAll(async () => {
    const realms = buildRealms(
      realmFileSchema.parse({
        version: 1,
        realms: [
          {
            id: '7a1c3b2a-9e8f-4a7b-8c6d-5e4f3a2b1c0d',
            name: 'local',
            type: 'file',
            roles: [{ name: 'reader', permissions: ['kms:read'] }],
            users: [
              {
                id: '01a20f00-0000-7000-8000-0000000000bb',
                username: 'guarded',
                password_hash: await hashPassword(PASSWORD, 1000),
                roles: ['reader'],
              },
            ],
          },
        ],
      }),
      { demo: false },
    );
    const first = await database.open(KMS_MIGRATIONS);
    // PostgreSQL: a second connection, as a second process has; SQLite in memory: the same database.
    const second = database.dialect === 'postgres' ? await database.open() : first;
    instances = [first, second].map((db) =>
      createPasswordLogin({
        realms,
        db,
        lockout: { maxFailures: 3, lockoutMs: 60_000 },
        failureDelayMs: 1,
        now: () => clock,
      }),
    );
  });

  const refusal = (attempt: Promise<unknown>) =>
    attempt.then(
      () => 'signed in',
      (error: unknown) => (error instanceof LoginRefused ? error.reason : String(error)),
    );

  it('counts simultaneous wrong passwords on both instances and locks the username for both', async () => {
    const guesses = await Promise.all(
      Array.from({ length: 8 }, (_, n) => refusal(instances[n % 2]!('guarded', `wrong-guess-${n}`))),
    );
    expect(guesses.every((reason) => reason === 'invalid_credentials' || reason === 'locked')).toBe(true);
    expect(await refusal(instances[0]!('guarded', PASSWORD))).toBe('locked');
    expect(await refusal(instances[1]!('guarded', PASSWORD))).toBe('locked');
  });

  it('lets the user in once the lockout is over, and a success clears the count', async () => {
    clock += 61_000;
    expect(await refusal(instances[0]!('guarded', PASSWORD))).toBe('signed in');
    // Two failures, a success, two more: never three in a row, so never locked.
    for (const round of [0, 1]) {
      for (const n of [0, 1]) {
        expect(await refusal(instances[n]!('guarded', `wrong-${round}-${n}`))).toBe('invalid_credentials');
      }
      expect(await refusal(instances[round]!('guarded', PASSWORD))).toBe('signed in');
    }
  });
});
