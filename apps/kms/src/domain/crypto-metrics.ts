/**
 * `kms.crypto.operations` (Prometheus `kms_crypto_operations_total`): each successful encrypt, decrypt,
 * rewrap, sign, verify and data key generation, by operation and elastic key algorithm. `kms.token.validations`
 * (`kms_token_validations_total`): each bearer token the KMS checked, by outcome (`valid` or the refusal code).
 */
import { lazyCounter } from '@cryptoutil/infra';

const operations = lazyCounter('kms.crypto.operations', 'KMS crypto operations by operation and algorithm.');
const validations = lazyCounter('kms.token.validations', 'Bearer tokens checked by the KMS, by outcome.', '{token}');

export type CryptoOperation = 'encrypt' | 'decrypt' | 'rewrap' | 'sign' | 'verify' | 'generate';

/** `count` successful operations (a batch counts its items). */
export function countCryptoOperation(operation: CryptoOperation, algorithm: string, count = 1): void {
  if (count > 0) operations().add(count, { operation, algorithm });
}

export function countTokenValidation(outcome: string): void {
  validations().add(1, { outcome });
}
