/**
 * JSON merge patch (RFC 7396): what an edit sends to `PATCH /api/inventory/machines/{id}`.
 * Only the keys the admin changed travel, so keys the page does not know and masked secrets
 * ("***") are never written back over the file's real values.
 */
import type { Json, JsonObject } from './types';

export function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && jsonEqual(a[k], b[k]));
  }
  return false;
}

/**
 * The merge patch that turns `original` into `edited`: changed keys with their new value,
 * removed keys as null, nested objects patched key by key, arrays replaced whole.
 * An empty object means "nothing changed".
 */
export function buildMergePatch(original: JsonObject, edited: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const key of Object.keys(original)) {
    if (!(key in edited)) patch[key] = null;
  }
  for (const [key, value] of Object.entries(edited)) {
    const before = original[key];
    if (jsonEqual(before, value)) continue;
    if (isObject(before) && isObject(value)) {
      const inner = buildMergePatch(before, value);
      if (Object.keys(inner).length > 0) patch[key] = inner;
    } else {
      // A null in a merge patch means "remove": a key whose new value is null goes away.
      patch[key] = value;
    }
  }
  return patch;
}

/** `target` with `patch` applied (RFC 7396 §2); neither argument is modified. */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

export function isEmptyPatch(patch: JsonObject): boolean {
  return Object.keys(patch).length === 0;
}
