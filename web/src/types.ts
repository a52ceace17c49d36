/**
 * The API's JSON shapes, for the rest of the page. They are generated from the server's OpenAPI
 * description (server/api_models.py, scraper/view_model.py) into `api.gen.ts` by `make web-types`;
 * `make lint` fails when that file is out of date, so the page and the server cannot drift.
 * Times are Unix seconds.
 */
import type { components } from './api.gen';

type Schemas = components['schemas'];

export type Status = Schemas['Status'];
export type Location = Schemas['Location'];
export type PlanPosition = Schemas['PlanPosition'];
export type Threshold = Schemas['Threshold'];
export type LastScrape = Schemas['LastScrape'];
export type SystemSummary = Schemas['SystemSummary'];
export type Maintenance = Schemas['Maintenance'];
/** One machine, as `GET /api/machines` and the `/api/live` WebSocket send it. */
export type Machine = Schemas['Machine'];
export type MachineList = Schemas['MachineList'];
export type StatusCounts = Schemas['StatusCounts'];
export type MachineDetail = Schemas['MachineDetail'];
export type ScrapeHealth = Schemas['ScrapeHealth'];
export type History = Schemas['History'];
export type HistoryPoint = Schemas['HistoryPoint'];

/** Every status, in the server's order; the check below fails to compile when one is missing. */
export const STATUSES = ['up', 'warn', 'alarm', 'sensor_fault', 'down', 'stale', 'disabled', 'unknown'] as const satisfies readonly Status[];
type Missing = Exclude<Status, (typeof STATUSES)[number]>;
const everyStatusListed: [Missing] extends [never] ? true : Missing = true;
void everyStatusListed;

/**
 * The live messages as the page holds them after `parseLiveMessage` (web/src/fleet.ts): the wire's
 * (`SnapshotMessage`, `UpdateMessage` of the API's schemas), except that a missing or odd `time`
 * is null and `ping_interval` is kept only when it is a positive number.
 */
export type SnapshotMessage = Omit<Schemas['SnapshotMessage'], 'time' | 'ping_interval'> & {
  time: number | null;
  ping_interval?: number;
};

export type UpdateMessage = Omit<Schemas['UpdateMessage'], 'time'> & { time: number | null };

export type LiveMessage = SnapshotMessage | UpdateMessage;
