/** Identifiers: UUIDv7 for entities (time-ordered), UUIDv4 for tenants (kms.md, KMS-16). */
import { v4, v7 } from 'uuid';

export const uuidv7 = (): string => v7();
export const uuidv4 = (): string => v4();

const CANONICAL_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isCanonicalUuidV4(value: string): boolean {
  return CANONICAL_V4.test(value);
}

export function isCanonicalUuid(value: string): boolean {
  return CANONICAL_UUID.test(value);
}
