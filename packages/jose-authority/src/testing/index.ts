export * from './fake-issuer.js';
