/**
 * `pnpm audit:verify [--product kms|identity] [--database <url>] [--schema <name>] [--expect-head <hash>]`:
 * walks a product's audit chain (packages/infra/src/audit) and names the first broken record. The
 * database defaults to the one `pnpm demo` uses (`.data/<product>/<product>.sqlite`); give the head
 * published earlier (`GET /admin/v1/audit`) to also catch removed newest records. Exit 0 intact,
 * 1 broken, 2 nothing to check.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase, verifyAuditChain, type AuditProduct } from '@cryptoutil/infra';
import { ROOT } from './demo/services.js';

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv.filter((arg) => arg !== '--'),
    options: {
      product: { type: 'string', default: 'kms' },
      database: { type: 'string' },
      schema: { type: 'string' },
      'expect-head': { type: 'string' },
    },
  });
  const product = values.product as AuditProduct;
  if (product !== 'kms' && product !== 'identity') {
    process.stderr.write('audit:verify: --product is kms or identity\n');
    return 2;
  }
  const file = join(ROOT, '.data', product, `${product}.sqlite`);
  const url = values.database ?? `sqlite:${file}`;
  if (!values.database && !existsSync(file)) {
    process.stderr.write(`audit:verify: no ${file} (start pnpm demo first, or give --database <url>)\n`);
    return 2;
  }
  const db = await openDatabase({ url, ...(values.schema ? { schema: values.schema } : {}) });
  try {
    const result = await verifyAuditChain(db, product, {
      ...(values['expect-head'] ? { expectedHead: values['expect-head'] } : {}),
    });
    if (result.ok) {
      process.stdout.write(`${product} audit log intact: ${result.records} records, head ${result.head}\n`);
      return 0;
    }
    process.stdout.write(
      `${product} audit log BROKEN at record ${result.brokenAt}: ${result.reason} (${result.records} records verified before it)\n`,
    );
    return 1;
  } catch (error) {
    process.stderr.write(`audit:verify: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  } finally {
    await db.close();
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code));
