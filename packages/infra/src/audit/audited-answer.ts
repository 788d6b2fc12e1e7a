/**
 * No answer before its audit record: a response is held at `res.end` until the records it carries are
 * stored, so a crash loses no record of anything a client was told happened. If a record cannot be stored,
 * the client gets `503 audit_unavailable` instead of the answer (as Vault refuses to answer when no audit
 * device can log); an answer that is already a 5xx failure leaves unchanged. Records still go through the
 * audit log's group commit, so holding costs latency (one commit), not throughput.
 */
import type { RequestHandler, Response } from 'express';
import { ServiceUnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import { sendProblem } from '../problem.js';
import { currentRequestContext } from '../request-context.js';

type End = Response['end'];

function auditUnavailable(res: Response, end: () => unknown): void {
  if (res.headersSent) {
    // Streaming answers have already started; end them (the failure was logged).
    end();
    return;
  }
  // The held answer's own entity headers do not describe the problem that replaces it.
  for (const name of ['content-length', 'etag', 'content-encoding']) res.removeHeader(name);
  // res.end is already claimed by holdAnswer, so sendProblem's send goes straight out.
  sendProblem(
    res,
    new ServiceUnavailableError('audit_unavailable', {
      detail: 'The audit log could not record this request; retry later.',
      headers: { 'Retry-After': '1' },
    }),
  );
}

/**
 * Runs `work` when the handler ends the response (its status and `res.locals` are final then) and sends
 * the answer once `work` has resolved; a failure becomes a `503 audit_unavailable` answer.
 */
export function holdAnswer(res: Response, work: () => Promise<unknown>, logger?: Logger): void {
  const end = res.end.bind(res) as (...args: unknown[]) => unknown;
  let ended = false;
  res.end = ((...args: unknown[]) => {
    if (ended) return end(...args);
    ended = true;
    let pending: Promise<unknown>;
    try {
      pending = work();
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      () => end(...args),
      (error: unknown) => {
        logger?.error('writing the audit log failed; the request is answered 503', { error });
        // A failure answer claims nothing happened, so it may leave as it is (e.g. database_unavailable).
        if (res.statusCode >= 500) end(...args);
        else auditUnavailable(res, end);
      },
    );
    return res;
  }) as End;
}

/**
 * For audit records appended while a request is handled (sign-ins, token grants): the answer waits until
 * every record appended under this request's context is stored. Needs `requestIdMiddleware` before it.
 */
export function answerAfterAuditRecords(logger?: Logger): RequestHandler {
  return (_req, res, next) => {
    const context = currentRequestContext();
    if (context) {
      holdAnswer(
        res,
        async () => {
          // Records may be appended while earlier ones are stored: wait until none is left.
          while (context.auditRecords && context.auditRecords.length > 0) {
            const stored = await Promise.all(context.auditRecords.splice(0));
            if (stored.includes(false)) throw new Error('an audit record of this request was not stored');
          }
        },
        logger,
      );
    }
    next();
  };
}
