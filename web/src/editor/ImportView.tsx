import { useState } from 'react';
import type { InventoryApi, WriteOutcome } from './api';
import { problemText } from './form';

export interface ImportViewProps {
  api: InventoryApi;
  /** The version of machines.yaml the page last read. */
  etag: string | null;
  /** Called after a successful import (the page reads the inventory again). */
  onImported: () => Promise<string | null>;
}

const MAX_BYTES = 5 * 1024 * 1024;

export function formatOf(fileName: string, type: string): 'yaml' | 'csv' {
  return /\.csv$/i.test(fileName) || type === 'text/csv' ? 'csv' : 'yaml';
}

/** Bulk add/replace from a YAML (a `machines:` list) or CSV file; problems shown by row and field. */
export function ImportView({ api, etag, onImported }: ImportViewProps) {
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<WriteOutcome | { kind: 'local'; detail: string } | null>(null);

  const run = async (version: string | null) => {
    if (file === null || version === null) return;
    if (file.size > MAX_BYTES) {
      setOutcome({ kind: 'local', detail: 'The file is larger than 5 MB.' });
      return;
    }
    setBusy(true);
    try {
      const result = await api.importFile(await file.text(), formatOf(file.name, file.type), version);
      setOutcome(result);
      if (result.kind === 'ok') await onImported();
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="mw-import-title" className="mw-import">
      <h3 id="mw-import-title">Import machines</h3>
      <p className="mw-field-hint">
        A YAML file with a <code>machines:</code> list (as in machines.yaml) or a CSV file with a header row (id, name, url, site,
        lat, lon, …). Machines with a new id are added, machines with a known id replaced; the rest of machines.yaml and its
        comments stay as they are.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(etag);
        }}
      >
        <div className="mw-field">
          <label htmlFor="mw-import-file">File (.yaml, .yml or .csv)</label>
          <input
            id="mw-import-file"
            type="file"
            accept=".yaml,.yml,.csv,application/yaml,text/yaml,text/csv"
            onChange={(e) => {
              setFile(e.target.files?.[0] ?? null);
              setOutcome(null);
            }}
          />
        </div>
        <button type="submit" className="mw-primary" disabled={file === null || busy || etag === null}>
          Import the file
        </button>
      </form>
      {outcome?.kind === 'ok' && (
        <p role="status" data-testid="import-done">
          Imported {file?.name}.
        </p>
      )}
      {outcome?.kind === 'invalid' && (
        <div role="alert" className="mw-field-error" data-testid="import-problems">
          <p>Nothing was imported: the file has problems.</p>
          <ul>
            {outcome.problems.map((p, i) => (
              <li key={i}>{problemText(p)}</li>
            ))}
          </ul>
        </div>
      )}
      {outcome?.kind === 'conflict' && (
        <div role="alert" className="mw-field-error">
          <p>machines.yaml changed since the page read it (another admin or an edit on disk). Nothing was imported.</p>
          <button type="button" onClick={() => void onImported().then((fresh) => run(fresh))}>
            Import on top of the current version
          </button>
        </div>
      )}
      {(outcome?.kind === 'refused' || outcome?.kind === 'local') && (
        <p role="alert" className="mw-field-error">
          {outcome.detail}
        </p>
      )}
    </section>
  );
}
