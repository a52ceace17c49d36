import L from 'leaflet';

/** A pin for the machine being placed: distinct from the status markers, its name as text. */
export function placementIcon(label: string): L.DivIcon {
  const element = document.createElement('div');
  element.className = 'mw-place-pin';
  const pin = document.createElement('span');
  pin.className = 'mw-place-pin-head';
  pin.setAttribute('aria-hidden', 'true');
  pin.textContent = '✚';
  const name = document.createElement('span');
  name.className = 'mw-place-pin-label';
  // Text, never markup: a machine's name is whatever an admin typed.
  name.textContent = label;
  element.append(pin, name);
  return L.divIcon({ html: element, className: 'mw-place-marker', iconSize: [28, 28], iconAnchor: [14, 14] });
}

/** Six decimals: about 0.1 m, and no float noise written into machines.yaml. */
export function roundCoordinate(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

/**
 * Placing one machine on the fleet map: a draggable pin at its location in the form, and,
 * while picking, a click on the map puts it there. Owns its own layer and handlers on the map
 * it is given; `destroy` takes them all away again.
 */
export class MapPlacement {
  private marker: L.Marker | null = null;
  private picking = false;

  constructor(
    private readonly map: L.Map,
    private readonly onPlace: (lat: number, lon: number) => void,
  ) {
    map.on('click', this.handleClick);
  }

  /** Shows the pin at `at` (hidden when null), labelled `label`. */
  setPosition(at: { lat: number; lon: number } | null, label: string): void {
    if (at === null) {
      this.marker?.remove();
      this.marker = null;
      return;
    }
    if (this.marker === null) {
      this.marker = L.marker([at.lat, at.lon], {
        draggable: true,
        autoPan: true,
        keyboard: true,
        title: `Drag to move ${label}`,
        zIndexOffset: 10_000,
        icon: placementIcon(label),
      }).addTo(this.map);
      this.marker.on('dragend', () => {
        const where = this.marker?.getLatLng();
        if (where) this.onPlace(roundCoordinate(where.lat), roundCoordinate(L.Util.wrapNum(where.lng, [-180, 180], true)));
      });
    } else {
      this.marker.setLatLng([at.lat, at.lon]);
      this.marker.setIcon(placementIcon(label));
    }
  }

  /** While on, the next click on the map places the machine (and picking ends). */
  setPicking(on: boolean): void {
    this.picking = on;
    this.map.getContainer().classList.toggle('mw-picking', on);
  }

  destroy(): void {
    this.setPicking(false);
    this.map.off('click', this.handleClick);
    this.marker?.remove();
    this.marker = null;
  }

  private readonly handleClick = (event: L.LeafletMouseEvent): void => {
    if (!this.picking) return;
    this.onPlace(roundCoordinate(event.latlng.lat), roundCoordinate(L.Util.wrapNum(event.latlng.lng, [-180, 180], true)));
  };
}
