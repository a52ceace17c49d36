import { describe, expect, it } from 'vitest';
import { parseSites, planFileProblem, planPosition, PlansApi, planUrl } from './api';
import { planMarkerElement } from './FloorPlanView';
import { fromPlanLatLng, toPlanLatLng } from './geometry';
import { siteInView } from './siteInView';
import { machine } from '../../tests/helpers';

describe('plan geometry', () => {
  const size = { width: 2000, height: 1000 };

  it('puts fractions from the top-left onto the CRS.Simple plan and back', () => {
    expect(toPlanLatLng({ x: 0, y: 0 }, size)).toEqual([1000, 0]); // top left
    expect(toPlanLatLng({ x: 1, y: 1 }, size)).toEqual([0, 2000]); // bottom right
    expect(fromPlanLatLng(...toPlanLatLng({ x: 0.25, y: 0.75 }, size), size)).toEqual({ x: 0.25, y: 0.75 });
  });

  it('keeps a drop outside the image on its edge', () => {
    expect(fromPlanLatLng(1500, -30, size)).toEqual({ x: 0, y: 0 });
    expect(fromPlanLatLng(-5, 2100, size)).toEqual({ x: 1, y: 1 });
  });
});

describe('sites and plans', () => {
  it('reads sites with or without a plan, ignoring malformed ones', () => {
    const sites = parseSites({
      sites: [
        { name: 'Lyon', machines: ['a', 'b'], counts: {}, plan: null },
        { name: 'Berlin', machines: 3, plan: { width: 800, height: 600, etag: 'p1' } },
        { name: '', machines: 1 },
        { name: 'Bad', plan: { width: -1, height: 2 } },
      ],
    });
    expect(sites).toEqual([
      { name: 'Bad', machines: 0, plan: null },
      { name: 'Berlin', machines: 3, plan: { width: 800, height: 600, etag: 'p1' } },
      { name: 'Lyon', machines: 2, plan: null },
    ]);
    expect(planUrl('Hall 2/East', { width: 1, height: 1, etag: 'e"1' })).toBe('/api/sites/Hall%202%2FEast/plan?v=e%221');
  });

  it('refuses a file that is not a PNG, JPEG or WebP image of at most 5 MB before uploading', () => {
    expect(planFileProblem({ size: 10, type: 'image/svg+xml' })).toMatch(/PNG, JPEG or WebP/);
    expect(planFileProblem({ size: 6 * 1024 * 1024, type: 'image/png' })).toMatch(/5 MB/);
    expect(planFileProblem({ size: 10, type: 'image/webp' })).toBeNull();
  });

  it('uploads with the image type and the CSRF token, and reports the server refusal', async () => {
    const calls: { path: string; init: RequestInit }[] = [];
    const api = new PlansApi('tok', async (path, init = {}) => {
      calls.push({ path, init });
      return new Response(JSON.stringify({ detail: 'not an image' }), { status: 422 });
    });
    await expect(api.upload('Berlin', new Blob(['x'], { type: 'image/png' }))).rejects.toThrow('not an image');
    expect(calls[0]!.init).toMatchObject({ method: 'PUT', headers: { 'Content-Type': 'image/png', 'X-CSRF-Token': 'tok' } });
  });

  it('accepts only positions inside the plan', () => {
    expect(planPosition({ x: 0.5, y: 1 })).toEqual({ x: 0.5, y: 1 });
    expect(planPosition({ x: 1.5, y: 0 })).toBeNull();
    expect(planPosition({ x: '0.5', y: 0 })).toBeNull();
  });
});

describe('markers on the plan', () => {
  it('show status by shape and words, and a name like markup as text', () => {
    const element = planMarkerElement({ id: 'evil', name: '<img src=x onerror=alert(1)>', status: 'alarm', reason: null, position: { x: 0, y: 0 } });
    expect(element.querySelector('img')).toBeNull();
    expect(element.textContent).toBe('<img src=x onerror=alert(1)>Alarm');
    expect(element.querySelector('svg')).not.toBeNull();
    expect(element.dataset.status).toBe('alarm');
  });
});

describe('zooming into a site offers its plan', () => {
  const at = (lat: number, lon: number) => ({ lat, lon });
  const m = (id: string, site: string | null, lat: number, lon: number) => ({ ...machine(id), site, location: at(lat, lon) });
  const berlin = { south: 52.5, west: 13.3, north: 52.6, east: 13.5 };
  const plans = new Set(['Berlin']);

  it('when every machine in view is of one site that has a plan, and the map is zoomed in', () => {
    const fleet = [m('a', 'Berlin', 52.52, 13.4), m('b', 'Berlin', 52.55, 13.45), m('far', 'Lyon', 45.7, 4.8), { ...machine('x'), location: null }];
    expect(siteInView(fleet, berlin, 15, plans)).toBe('Berlin');
    expect(siteInView(fleet, berlin, 8, plans)).toBeNull(); // zoomed out: a region, not a site
    expect(siteInView(fleet, berlin, 15, new Set(['Lyon']))).toBeNull(); // Berlin has no plan
  });

  it('not when machines of another site, or of none, are in view', () => {
    expect(siteInView([m('a', 'Berlin', 52.52, 13.4), m('b', 'Potsdam', 52.53, 13.41)], berlin, 15, plans)).toBeNull();
    expect(siteInView([m('a', 'Berlin', 52.52, 13.4), m('b', null, 52.53, 13.41)], berlin, 15, plans)).toBeNull();
    expect(siteInView([], berlin, 15, plans)).toBeNull();
  });
});
