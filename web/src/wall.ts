/** Wall mode: a screen on the shop floor (full screen, large type, dark, optionally touring the sites). */
import { useEffect, useLayoutEffect, useMemo, useState } from 'react';
import type { Machine } from './types';

/** Full screen when the browser allows it (it wants a click first; a start-up URL gets a refusal). */
export async function enterFullscreen(element: HTMLElement = document.documentElement): Promise<boolean> {
  if (document.fullscreenElement || typeof element.requestFullscreen !== 'function') return false;
  try {
    await element.requestFullscreen();
    return true;
  } catch {
    return false;
  }
}

export async function exitFullscreen(): Promise<void> {
  if (!document.fullscreenElement || typeof document.exitFullscreen !== 'function') return;
  try {
    await document.exitFullscreen();
  } catch {
    // Already left (Esc): nothing to do.
  }
}

export interface Site {
  name: string;
  points: [number, number][];
}

/** The sites with at least one located machine, by name; machines without a site are not toured. */
export function sitesOf(machines: Iterable<Machine>): Site[] {
  const bySite = new Map<string, [number, number][]>();
  for (const m of machines) {
    if (m.site === null || m.location === null) continue;
    let points = bySite.get(m.site);
    if (points === undefined) bySite.set(m.site, (points = []));
    points.push([m.location.lat, m.location.lon]);
  }
  return [...bySite.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, points]) => ({ name, points }));
}

/**
 * The site shown now when touring every `seconds` (null: no tour): the index moves on by
 * itself; the caller moves the map whenever the returned `seq` changes.
 */
export function useSiteTour(
  machines: ReadonlyMap<string, Machine>,
  seconds: number | null,
): { site: Site; index: number; count: number; seq: number } | null {
  // Only the list of sites matters: live updates that change no site keep the tour where it is.
  const key = useMemo(() => JSON.stringify(sitesOf(machines.values())), [machines]);
  const sites = useMemo(() => JSON.parse(key) as Site[], [key]);
  const [seq, setSeq] = useState(0);
  useEffect(() => {
    if (seconds === null || sites.length === 0) return;
    const timer = window.setInterval(() => setSeq((s) => s + 1), seconds * 1000);
    return () => window.clearInterval(timer);
  }, [seconds, sites.length]);
  if (seconds === null || sites.length === 0) return null;
  const index = seq % sites.length;
  return { site: sites[index]!, index, count: sites.length, seq };
}

/** The root element's wall-mode class (large type: rem sizes follow it) and the list's row height in pixels. */
export function useWallRoot(wall: boolean): number {
  const [rowHeight, setRowHeight] = useState(40);
  useLayoutEffect(() => {
    const root = document.documentElement;
    root.classList.toggle('mw-wall-root', wall);
    const rem = parseFloat(getComputedStyle(root).fontSize);
    setRowHeight(Math.round((Number.isFinite(rem) && rem > 0 ? rem : 16) * 2.5));
    return () => root.classList.remove('mw-wall-root');
  }, [wall]);
  return rowHeight;
}
