export * from './algorithms.js';
export * from './errors.js';
export * from './import-key.js';
export * from './jwe.js';
export * from './jws.js';
export * from './keys.js';
export * from './wrap.js';
export type { JWK, JSONWebKeySet } from 'jose';
