export const FIRST_RETRY_MS = 1000;
export const MAX_RETRY_MS = 30000;

/**
 * Delay before reconnect attempt number `attempt` (0 for the first retry): 1 s doubling up to
 * 30 s, times a jitter factor in [0.8, 1.2) from `random` (a value in [0, 1)) so that many
 * screens do not reconnect in lockstep after a server restart. Never above 30 s.
 */
export function retryDelayMs(attempt: number, random: number): number {
  const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * Math.pow(2, Math.max(0, attempt)));
  const jittered = base * (0.8 + 0.4 * Math.min(Math.max(random, 0), 1));
  return Math.round(Math.min(MAX_RETRY_MS, jittered));
}
