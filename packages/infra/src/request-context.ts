/** Per-request values (request id) available anywhere below the HTTP layer, e.g. to the logger. */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  requestId: string;
  /** Audit records appended while handling this request, not yet known to be stored (see audited-answer). */
  auditRecords?: Promise<boolean>[];
}

const storage = new AsyncLocalStorage<RequestContext>();

export function runWithRequestContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

export function currentRequestContext(): RequestContext | undefined {
  return storage.getStore();
}
