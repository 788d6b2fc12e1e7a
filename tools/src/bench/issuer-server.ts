/**
 * A stand-in Identity for `pnpm bench` in its own process (so its work does not share the load
 * generator's event loop): discovery, JWKS, introspection. Sends its URL and one access token for the
 * given audience to the parent.
 */
import { FakeIssuer } from '@cryptoutil/jose-authority/testing';

const [audience = 'https://kms.bench', scope = 'kms:admin'] = process.argv.slice(2);
const issuer = new FakeIssuer();
await issuer.start();
await issuer.addKey('bench-key');
issuer.audience = audience;
process.send?.({ url: issuer.url, token: await issuer.token({ scope, exp: Math.floor(Date.now() / 1000) + 3600 }) });
process.on('SIGTERM', () => void issuer.stop().then(() => process.exit(0)));
