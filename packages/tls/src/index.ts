export * from './ca.js';
export * from './fqdn.js';
export { type Curve } from './keys.js';
export * from './leaf.js';
export * from './store.js';
export * from './tls-options.js';
export * from './pkcs12.js';
export * from './listeners.js';
