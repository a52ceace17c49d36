import { describe, expect, it } from 'vitest';
import { applyMergePatch, buildMergePatch, isEmptyPatch, jsonEqual } from './mergePatch';
import type { JsonObject } from './types';

const BASE: JsonObject = {
  id: 'press_14',
  name: 'Press 14',
  url: 'http://10.0.0.14:9817/metrics',
  location: { lat: 52.5, lon: 13.4 },
  labels: { line: 'casting', hall: '2' },
  auth: { bearer_token_file: '***' },
  sample_limit: 1000,
  alerts: [{ statuses: ['alarm'] }],
};

describe('buildMergePatch', () => {
  it('sends only what changed, nested key by key', () => {
    const edited = { ...BASE, name: 'Press 14b', location: { lat: 52.5, lon: 13.5 } };
    expect(buildMergePatch(BASE, edited)).toEqual({ name: 'Press 14b', location: { lon: 13.5 } });
  });

  it('removes keys with null, including one label of several', () => {
    const { url: _url, ...rest } = BASE;
    const edited = { ...rest, labels: { line: 'casting' } };
    expect(buildMergePatch(BASE, edited)).toEqual({ url: null, labels: { hall: null } });
  });

  it('never sends a masked secret or a key the editor does not know when they are unchanged', () => {
    const patch = buildMergePatch(BASE, { ...BASE, enabled: false });
    expect(patch).toEqual({ enabled: false });
    expect(JSON.stringify(patch)).not.toContain('***');
  });

  it('replaces arrays whole and is empty when nothing changed', () => {
    expect(buildMergePatch(BASE, { ...BASE, alerts: [{ statuses: ['down'] }] })).toEqual({ alerts: [{ statuses: ['down'] }] });
    expect(isEmptyPatch(buildMergePatch(BASE, structuredClone(BASE)))).toBe(true);
  });

  it('a patch applied to the original gives the edited entry (RFC 7396 round trip)', () => {
    const edited: JsonObject = { ...BASE, site: 'Berlin', labels: { line: 'pressing' }, auth: { bearer_token_env: 'TOKEN' } };
    delete edited.sample_limit;
    const patched = applyMergePatch(BASE, buildMergePatch(BASE, edited));
    expect(jsonEqual(patched, edited)).toBe(true);
  });
});

describe('applyMergePatch', () => {
  it('follows the examples of RFC 7396', () => {
    expect(applyMergePatch({ a: 'b' }, { a: 'c' })).toEqual({ a: 'c' });
    expect(applyMergePatch({ a: 'b' }, { b: 'c' })).toEqual({ a: 'b', b: 'c' });
    expect(applyMergePatch({ a: 'b' }, { a: null })).toEqual({});
    expect(applyMergePatch({ a: [{ b: 'c' }] }, { a: [1] })).toEqual({ a: [1] });
    expect(applyMergePatch({ e: null }, { a: 1 })).toEqual({ e: null, a: 1 });
    expect(applyMergePatch([1, 2], { a: 'b', c: null })).toEqual({ a: 'b' });
    expect(applyMergePatch({}, { a: { bb: { ccc: null } } })).toEqual({ a: { bb: {} } });
  });

  it('leaves its arguments as they were', () => {
    const target = { a: { b: 1 } };
    applyMergePatch(target, { a: { b: 2 } });
    expect(target).toEqual({ a: { b: 1 } });
  });
});
