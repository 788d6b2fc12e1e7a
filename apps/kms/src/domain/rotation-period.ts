/**
 * `rotation_period`: an ISO 8601 duration (`P90D`, `P1Y`, `PT12H`, `P1Y2M3DT4H`), at least one hour.
 * Years, months, weeks and days are calendar units (UTC), so `P1M` from 31 January is 3 March.
 */
import { invalidKeySetting } from './errors.js';

export interface RotationPeriod {
  years: number;
  months: number;
  days: number;
  seconds: number;
}

const DURATION =
  /^P(?:(\d{1,4})Y)?(?:(\d{1,5})M)?(?:(\d{1,6})W)?(?:(\d{1,6})D)?(?:T(?:(\d{1,7})H)?(?:(\d{1,9})M)?(?:(\d{1,10})S)?)?$/;

export const MIN_ROTATION_PERIOD_MS = 3600 * 1000;

/** Parses a rotation period; anything else (or under an hour) is a 400 naming `rotation_period`. */
export function parseRotationPeriod(text: string): RotationPeriod {
  const match = DURATION.exec(text);
  if (!match || text === 'P' || text.endsWith('T')) {
    throw invalidKeySetting('rotation_period', 'must be an ISO 8601 duration such as P90D, P1Y or PT12H.');
  }
  const [years, months, weeks, days, hours, minutes, seconds] = match.slice(1).map((part) => Number(part ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const period = { years, months, days: weeks * 7 + days, seconds: hours * 3600 + minutes * 60 + seconds };
  const epoch = new Date(0);
  if (afterPeriod(epoch, period).getTime() - epoch.getTime() < MIN_ROTATION_PERIOD_MS) {
    throw invalidKeySetting('rotation_period', 'must be at least PT1H (one hour).');
  }
  return period;
}

/** The instant one period after `from`. */
export function afterPeriod(from: Date, period: RotationPeriod): Date {
  const date = new Date(from.getTime());
  date.setUTCFullYear(date.getUTCFullYear() + period.years, date.getUTCMonth() + period.months);
  date.setUTCDate(date.getUTCDate() + period.days);
  return new Date(date.getTime() + period.seconds * 1000);
}
