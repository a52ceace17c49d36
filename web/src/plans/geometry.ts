/**
 * A floor plan in Leaflet's `CRS.Simple`: the image spans [0, 0]–[height, width] in map units
 * (one unit a pixel of the image), y growing upwards as Leaflet's latitude does. Positions in
 * machines.yaml are fractions of the image, x from the left and y from the top, so they stay
 * right when an image is replaced by a larger scan of the same plan.
 */
import type { PlanPosition } from '../editor/types';

export interface PlanSize {
  width: number;
  height: number;
}

/** [lat, lng] in the plan's map units of a position given as fractions. */
export function toPlanLatLng(position: PlanPosition, size: PlanSize): [number, number] {
  return [size.height * (1 - position.y), size.width * position.x];
}

function clamp01(value: number): number {
  return Math.min(1, Math.max(0, value));
}

/** The fractions of a point on the plan, kept inside the image and to 4 decimals (0.1 ‰). */
export function fromPlanLatLng(lat: number, lng: number, size: PlanSize): PlanPosition {
  const round = (v: number) => Math.round(v * 1e4) / 1e4;
  return { x: round(clamp01(lng / size.width)), y: round(clamp01(1 - lat / size.height)) };
}
