/**
 * `pnpm hash-password`: reads a password (or an API key secret) from standard input and prints its
 * PBKDF2-HMAC-SHA256 hash (600,000 iterations) for realms.yml `password_hash` or `auth.api_keys[].key_hash`.
 */
import { hashPassword } from '@cryptoutil/infra';

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const secret = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (secret.length < 8) throw new Error('give at least 8 characters on standard input');
  process.stdout.write(`${await hashPassword(secret)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`hash-password: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
