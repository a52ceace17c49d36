import { describe, expect, it } from 'vitest';
import { emptyForm, entryFromForm, fieldErrors, fieldOf, formFromEntry, problemText } from './form';
import { buildMergePatch } from './mergePatch';
import type { InventoryEntry } from './types';

const ENTRY: InventoryEntry = {
  id: 'press_14',
  name: 'Press 14',
  url: 'http://10.0.0.14:9817/metrics',
  site: 'Berlin',
  location: { lat: 52.52, lon: 13.405 },
  labels: { line: 'casting', hall: '2' },
  scrape_interval: '30s',
  scrape_timeout: 10,
  thresholds: { machine_temperature_celsius: { warn: 70 } },
  plan_position: { x: 0.25, y: 0.5 },
  auth: { bearer_token_file: '***' },
  sample_limit: 1000,
};

describe('form ↔ entry', () => {
  it('an unchanged form gives back the same entry: the patch is empty, unknown keys and masked secrets kept', () => {
    const form = formFromEntry(ENTRY);
    expect(form.scrapeInterval).toBe('30s');
    expect(form.labels).toEqual([
      { key: 'line', value: 'casting' },
      { key: 'hall', value: '2' },
    ]);
    expect(form.auth).toMatchObject({ kind: 'bearer_token_file', reference: '***' });
    expect(buildMergePatch(ENTRY, entryFromForm(form, ENTRY))).toEqual({});
  });

  it('a new machine gets only the keys filled in (defaults stay out of machines.yaml)', () => {
    const form = { ...emptyForm(), id: ' lathe_2 ', url: 'http://10.0.0.2:9817/metrics', lat: '48.1', lon: '11.5' };
    expect(entryFromForm(form)).toEqual({ id: 'lathe_2', url: 'http://10.0.0.2:9817/metrics', location: { lat: 48.1, lon: 11.5 } });
  });

  it('clearing a field removes its key; disabling writes enabled: false; a number of seconds stays a number', () => {
    const form = { ...formFromEntry(ENTRY), site: '', enabled: false, scrapeInterval: '45', labels: [{ key: 'line', value: 'casting' }] };
    expect(buildMergePatch(ENTRY, entryFromForm(form, ENTRY))).toEqual({ site: null, enabled: false, scrape_interval: 45, labels: { hall: null } });
  });

  it('text where a number belongs is sent as text, for the server to refuse with its place', () => {
    const form = { ...formFromEntry(ENTRY), lat: 'north', thresholds: [{ metric: 'machine_temperature_celsius', warn: '70', alarm: 'hot' }] };
    const entry = entryFromForm(form, ENTRY);
    expect(entry.location).toEqual({ lat: 'north', lon: 13.405 });
    expect(entry.thresholds).toEqual({ machine_temperature_celsius: { warn: 70, alarm: 'hot' } });
  });

  it('a push machine has no url and no scrape settings; a changed auth replaces the masked one', () => {
    const form = { ...formFromEntry(ENTRY), mode: 'push' as const, auth: { ...formFromEntry(ENTRY).auth, kind: 'bearer_token_env' as const, reference: 'TOKEN' } };
    const patch = buildMergePatch(ENTRY, entryFromForm(form, ENTRY));
    expect(patch).toEqual({ mode: 'push', url: null, scrape_interval: null, scrape_timeout: null, auth: { bearer_token_file: null, bearer_token_env: 'TOKEN' } });
  });
});

describe("the server's 422 beside the fields", () => {
  const form = formFromEntry(ENTRY);

  it('maps each field path of the entry to its input, label and threshold rows by their key', () => {
    expect(fieldOf(['url'], form)).toBe('url');
    expect(fieldOf(['location', 'lat'], form)).toBe('lat');
    expect(fieldOf(['location'], form)).toBe('location');
    expect(fieldOf(['scrape_timeout'], form)).toBe('scrapeTimeout');
    expect(fieldOf(['labels', 'hall'], form)).toBe('label.1.key');
    expect(fieldOf(['thresholds', 'machine_temperature_celsius', 'alarm'], form)).toBe('threshold.0.alarm');
    expect(fieldOf(['plan_position', 'y'], form)).toBe('planY');
    expect(fieldOf(['auth', 'basic', 'username'], form)).toBe('auth');
  });

  it('what has no field of its own is shown at the top with its path', () => {
    const errors = fieldErrors(
      [
        { loc: ['url'], msg: 'must start with http:// or https://' },
        { loc: ['sample_limit'], msg: 'must be positive' },
        { loc: [], msg: 'scrape_timeout must be shorter than scrape_interval' },
        { loc: ['labels', 'gone'], msg: 'bad label' },
      ],
      form,
    );
    expect(errors.get('url')).toEqual(['must start with http:// or https://']);
    expect(errors.get('general')).toEqual(['sample_limit: must be positive', 'scrape_timeout must be shorter than scrape_interval']);
    expect(errors.get('labels')).toEqual(['bad label']);
  });

  it('an import problem names its row, a problem elsewhere in the file its line', () => {
    expect(problemText({ loc: ['url'], msg: 'must start with http://', row: 3 })).toBe('row 3, url: must start with http://');
    expect(problemText({ loc: ['inventory', 'machines', 2, 'url'], msg: 'bad', line: 14 })).toBe(
      'machines.yaml line 14, inventory.machines.2.url: bad',
    );
    expect(fieldOf(['inventory', 'machines', 2, 'url'], form)).toBe('general');
  });
});
