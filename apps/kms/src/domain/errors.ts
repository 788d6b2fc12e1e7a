/** KMS domain errors with the stable codes of kms.md. */
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '@cryptoutil/infra';

export const elasticKeyNotFound = (): NotFoundError =>
  new NotFoundError('elastic_key_not_found', { detail: 'No elastic key with this id.' });

export const materialKeyNotFound = (): NotFoundError =>
  new NotFoundError('material_key_not_found', { detail: 'No material key with this id in this elastic key.' });

export const nameTaken = (): ConflictError =>
  new ConflictError('elastic_key_name_taken', { detail: 'An elastic key with this name already exists.' });

export const versioningNotAllowed = (): ConflictError =>
  new ConflictError('versioning_not_allowed', {
    detail: 'This elastic key has versioning_allowed=false and already has a material key.',
  });

export const importNotAllowed = (): ForbiddenError =>
  new ForbiddenError('import_not_allowed', { detail: 'This elastic key was created with import_allowed=false.' });

export const materialKeyRevoked = (): ConflictError =>
  new ConflictError('material_key_revoked', { detail: 'The material key is revoked and refuses every operation.' });

export const noUsableMaterialKey = (): ConflictError =>
  new ConflictError('no_usable_material_key', { detail: 'The elastic key has no material key that is not revoked.' });

export const keyUsageMismatch = (needed: 'enc' | 'sig'): ValidationError =>
  new ValidationError(
    needed === 'enc'
      ? 'This operation needs an encryption (JWE) elastic key; this one signs.'
      : 'This operation needs a signing (JWS) elastic key; this one encrypts.',
    { code: 'key_usage_mismatch' },
  );

export const providerUnsupported = (): ValidationError =>
  new ValidationError('Only the "Internal" provider is supported.', { code: 'provider_unsupported' });

export const materialKeyPublicOnly = (): ConflictError =>
  new ConflictError('material_key_public_only', {
    detail:
      'This material key was imported as a public key only: it encrypts and verifies, but cannot decrypt or sign.',
  });

export const clearKeyImportRefused = (): ValidationError =>
  new ValidationError(
    'A private or secret key is never accepted in clear. Wrap it to the import wrapping key ' +
      '(GET /elastickey/{id}/wrappingkey) as a JWE RSA-OAEP-256 / A256GCM and send {"jwe": ...}; ' +
      '{"jwk": ...} takes a public key only.',
    { code: 'clear_key_import_refused' },
  );

export const wrappedKeyAlgorithmUnsupported = (): ValidationError =>
  new ValidationError('A wrapped key must be a JWE with alg RSA-OAEP-256 and enc A256GCM.', {
    code: 'wrapped_key_algorithm_unsupported',
  });

export const wrappingKeyUnknown = (): ValidationError =>
  new ValidationError(
    "The JWE's kid does not name this tenant's import wrapping key: wrap to the key from GET /elastickey/{id}/wrappingkey.",
    { code: 'wrapping_key_unknown' },
  );

export const wrappedKeyInvalid = (reason: string): ValidationError =>
  new ValidationError(`The wrapped key was refused. ${reason}`, { code: 'wrapped_key_invalid' });

export const materialKeyBelowMinVersion = (version: number, min: number): ConflictError =>
  new ConflictError('material_key_below_min_version', {
    detail: `Version ${version} is below this elastic key's minimum version ${min} for this operation.`,
  });

export const materialKeyVersionNotFound = (version: number): NotFoundError =>
  new NotFoundError('material_key_not_found', { detail: `This elastic key has no version ${version}.` });

export const materialKeyDestroyed = (): ConflictError =>
  new ConflictError('material_key_destroyed', {
    detail: 'The material of this version was destroyed (trimmed); it refuses every operation.',
  });

export const materialKeyExhausted = (detail: string): ConflictError =>
  new ConflictError('material_key_exhausted', { detail });

/** A setting of `PUT /elastickey/{id}` that the key's versions or algorithm do not allow (400 naming the field). */
export const invalidKeySetting = (field: string, detail: string): ValidationError =>
  new ValidationError(`${field}: ${detail}`, { code: 'invalid_body', extensions: { field } });
