/**
 * "Zooming into a site shows its plan": when the map is zoomed in far enough that every located
 * machine in view belongs to one site, and that site has a floor plan, the page offers the plan.
 */
import type { Machine } from '../types';

export interface ViewBounds {
  south: number;
  west: number;
  north: number;
  east: number;
}

/** From this zoom on (a few streets across) the machines in view are taken as "a site". */
export const SITE_ZOOM = 13;

/** The one site with a plan that all located machines in view belong to, else null. */
export function siteInView(
  machines: Iterable<Machine>,
  bounds: ViewBounds,
  zoom: number,
  sitesWithPlan: ReadonlySet<string>,
): string | null {
  if (zoom < SITE_ZOOM || sitesWithPlan.size === 0) return null;
  let site: string | null = null;
  for (const m of machines) {
    const at = m.location;
    if (at === null) continue;
    if (at.lat < bounds.south || at.lat > bounds.north || at.lon < bounds.west || at.lon > bounds.east) continue;
    if (m.site === null || (site !== null && m.site !== site)) return null;
    site = m.site;
  }
  return site !== null && sitesWithPlan.has(site) ? site : null;
}
