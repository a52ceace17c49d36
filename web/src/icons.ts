import { STATUS_META } from './status';
import type { Status } from './types';

// Every shape has a white halo so it stays readable on land, sea and other markers.
const HALO = 'stroke="#ffffff" stroke-width="2" stroke-linejoin="round"';

function shapeMarkup(status: Status): string {
  const c = STATUS_META[status].color;
  switch (STATUS_META[status].shape) {
    case 'circle':
      return `<circle cx="12" cy="12" r="8.5" fill="${c}" ${HALO}/>`;
    case 'triangle':
      return (
        `<path d="M12 2.5 L22 20.5 H2 Z" fill="${c}" ${HALO}/>` +
        '<rect x="11" y="8.5" width="2" height="6.5" fill="#1a1a1a"/><rect x="11" y="16.2" width="2" height="2" fill="#1a1a1a"/>'
      );
    case 'octagon':
      return (
        `<path d="M8 1.5 H16 L22.5 8 V16 L16 22.5 H8 L1.5 16 V8 Z" fill="${c}" ${HALO}/>` +
        '<rect x="10.75" y="5.5" width="2.5" height="8.5" fill="#ffffff"/><rect x="10.75" y="15.8" width="2.5" height="2.6" fill="#ffffff"/>'
      );
    case 'square':
      return `<rect x="3.5" y="3.5" width="17" height="17" rx="1.5" fill="${c}" ${HALO}/>`;
    case 'cross':
      return (
        '<path d="M5 5 L19 19 M19 5 L5 19" stroke="#ffffff" stroke-width="7.5" stroke-linecap="round"/>' +
        `<path d="M5 5 L19 19 M19 5 L5 19" stroke="${c}" stroke-width="4.5" stroke-linecap="round"/>`
      );
    case 'ring':
      return (
        '<circle cx="12" cy="12" r="8" fill="none" stroke="#ffffff" stroke-width="6"/>' +
        `<circle cx="12" cy="12" r="8" fill="none" stroke="${c}" stroke-width="3"/>`
      );
    case 'dash':
      return (
        '<rect x="2.5" y="8.5" width="19" height="7" rx="2" fill="#ffffff"/>' +
        `<rect x="4" y="10" width="16" height="4" rx="1" fill="${c}"/>`
      );
    case 'question':
      return (
        `<circle cx="12" cy="12" r="9.5" fill="${c}" ${HALO}/>` +
        // Drawn, not typed: an SVG <text> would add a stray "?" to the text of the summary row.
        '<path d="M9.2 9.3a2.9 2.9 0 1 1 4.1 2.6c-0.9 0.45-1.3 1.05-1.3 2.1v0.7" fill="none" stroke="#ffffff" ' +
        'stroke-width="2.3" stroke-linecap="round"/><circle cx="12" cy="17.7" r="1.4" fill="#ffffff"/>'
      );
  }
}

/**
 * The status symbol as an SVG string of `size` pixels. Decorative (`aria-hidden`): the element
 * that holds it carries the status in words.
 */
export function statusIconSvg(status: Status, size: number): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 24 24" ` +
    `aria-hidden="true" focusable="false" class="mw-icon-svg mw-icon-${status}">${shapeMarkup(status)}</svg>`
  );
}

/** Pixel size of a cluster circle: grows slowly with the number of machines inside. */
export function clusterSize(count: number): number {
  return Math.round(34 + Math.min(26, 6 * Math.log10(Math.max(1, count))));
}

/**
 * A cluster: a circle ringed in the worst status's colour with the machine count, and the worst
 * status's own symbol as a badge so that shape, not only colour, tells what is inside.
 */
export function clusterSvg(worst: Status, count: number): string {
  const size = clusterSize(count);
  const c = STATUS_META[worst].color;
  const label = count >= 10000 ? `${Math.floor(count / 1000)}k` : String(count);
  const fontSize = label.length >= 4 ? 11 : 13;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 40 40" ` +
    `aria-hidden="true" focusable="false" class="mw-cluster-svg">` +
    `<circle cx="20" cy="20" r="16" fill="#ffffff" stroke="${c}" stroke-width="5"/>` +
    `<text x="20" y="${20 + fontSize * 0.36}" text-anchor="middle" font-family="sans-serif" font-weight="700" ` +
    `font-size="${fontSize}" fill="#111111">${label}</text>` +
    `<g transform="translate(25 0) scale(0.625)">${shapeMarkup(worst)}</g>` +
    `</svg>`
  );
}
