import { useEffect, useRef } from 'react';
import { FieldError, TextField } from './Fields';
import type { AuthKind, FieldKey, LabelRow, MachineForm, ThresholdRow } from './form';
import { MASKED } from './types';

export interface MachineFormViewProps {
  form: MachineForm;
  onChange: (update: (form: MachineForm) => MachineForm) => void;
  errors: Map<FieldKey, string[]>;
  /** The server's last refusal, as received: a new one moves the focus to its first field. */
  refusal: readonly unknown[];
  isNew: boolean;
  busy: boolean;
  /** True while the next click on the fleet map sets the location. */
  pickingOnMap: boolean;
  onPickOnMap: (on: boolean) => void;
  /** Opens the floor plan of the machine's site to place it there (absent: no plan to open). */
  onPlaceOnPlan?: (() => void) | undefined;
  onSave: () => void;
  onCancel: () => void;
  onDelete?: (() => void) | undefined;
}

const ID = 'mw-ed';

/** The form of one machine: every field of its machines.yaml entry, labelled, keyboard reachable. */
export function MachineFormView(props: MachineFormViewProps) {
  const { form, onChange, errors, isNew, busy } = props;
  const set = <K extends keyof MachineForm>(key: K) => (value: MachineForm[K]) => onChange((f) => ({ ...f, [key]: value }));
  const err = (key: FieldKey) => errors.get(key);
  const general = errors.get('general');
  const formRef = useRef<HTMLFormElement>(null);

  // Keyboard users land in the form, and after a refusal on the first field the server named.
  useEffect(() => {
    formRef.current?.querySelector<HTMLInputElement>(isNew ? '#mw-ed-id' : '#mw-ed-name')?.focus();
  }, [isNew]);
  const refusal = props.refusal;
  useEffect(() => {
    if (refusal.length === 0) return;
    formRef.current?.querySelector<HTMLElement>('[aria-invalid="true"], .mw-form-problems')?.focus();
  }, [refusal]);

  return (
    <form
      ref={formRef}
      className="mw-editor-form"
      aria-label={isNew ? 'New machine' : `Edit machine ${form.id}`}
      data-testid="machine-form"
      onSubmit={(e) => {
        e.preventDefault();
        props.onSave();
      }}
    >
      {general && (
        <div className="mw-field-error mw-form-problems" role="alert" data-testid="form-problems" tabIndex={-1}>
          <p>The server refused the entry:</p>
          <ul>
            {general.map((m) => (
              <li key={m}>{m}</li>
            ))}
          </ul>
        </div>
      )}
      <fieldset>
        <legend>Identity</legend>
        <TextField
          id={`${ID}-id`}
          label="Id"
          value={form.id}
          onValue={set('id')}
          errors={err('id')}
          readOnly={!isNew}
          required
          hint={isNew ? 'Unique; lowercase letters, digits, _ and - only.' : 'The id of a machine cannot change.'}
        />
        <TextField id={`${ID}-name`} label="Name" value={form.name} onValue={set('name')} errors={err('name')} hint="Shown on the map (default: the id)." />
        <div className="mw-field">
          <label htmlFor={`${ID}-mode`}>Mode</label>
          <select id={`${ID}-mode`} value={form.mode} onChange={(e) => set('mode')(e.target.value === 'push' ? 'push' : 'pull')}>
            <option value="pull">pull (the scraper fetches /metrics)</option>
            <option value="push">push (the machine sends to /api/ingest)</option>
          </select>
          <FieldError id={`${ID}-mode-error`} messages={err('mode')} />
        </div>
        {form.mode === 'pull' && (
          <TextField id={`${ID}-url`} label="URL" value={form.url} onValue={set('url')} errors={err('url')} placeholder="http://10.0.1.23:9817/metrics" />
        )}
        <TextField id={`${ID}-site`} label="Site" value={form.site} onValue={set('site')} errors={err('site')} />
        <div className="mw-field mw-field-check">
          <input id={`${ID}-enabled`} type="checkbox" checked={form.enabled} onChange={(e) => set('enabled')(e.target.checked)} />
          <label htmlFor={`${ID}-enabled`}>Enabled (scraped; a disabled machine stays on the map as "disabled")</label>
          <FieldError id={`${ID}-enabled-error`} messages={err('enabled')} />
        </div>
      </fieldset>

      <fieldset>
        <legend>Location on the map</legend>
        <div className="mw-field-pair">
          <TextField id={`${ID}-lat`} label="Latitude" value={form.lat} onValue={set('lat')} errors={err('lat')} inputMode="decimal" />
          <TextField id={`${ID}-lon`} label="Longitude" value={form.lon} onValue={set('lon')} errors={err('lon')} inputMode="decimal" />
        </div>
        <FieldError id={`${ID}-location-error`} messages={err('location')} />
        <button type="button" aria-pressed={props.pickingOnMap} onClick={() => props.onPickOnMap(!props.pickingOnMap)} data-testid="pick-on-map">
          {props.pickingOnMap ? 'Click on the map to place… (Esc to stop)' : 'Place on the map'}
        </button>
        <p className="mw-field-hint">Or drag the ✚ pin on the map.</p>
      </fieldset>

      <fieldset>
        <legend>Position on the site's floor plan</legend>
        <div className="mw-field-pair">
          <TextField id={`${ID}-plan-x`} label="x (0 left … 1 right)" value={form.planX} onValue={set('planX')} errors={err('planX')} inputMode="decimal" />
          <TextField id={`${ID}-plan-y`} label="y (0 top … 1 bottom)" value={form.planY} onValue={set('planY')} errors={err('planY')} inputMode="decimal" />
        </div>
        <FieldError id={`${ID}-plan-error`} messages={err('plan')} />
        {props.onPlaceOnPlan ? (
          <button type="button" onClick={props.onPlaceOnPlan}>
            Place on the floor plan of {form.site}
          </button>
        ) : (
          <p className="mw-field-hint">Set a site with a floor plan to place the machine on it.</p>
        )}
      </fieldset>

      {form.mode === 'pull' && (
        <fieldset>
          <legend>Scraping</legend>
          <div className="mw-field-pair">
            <TextField
              id={`${ID}-interval`}
              label="Scrape interval"
              value={form.scrapeInterval}
              onValue={set('scrapeInterval')}
              errors={err('scrapeInterval')}
              placeholder="default"
              hint="e.g. 15s, 1m"
            />
            <TextField
              id={`${ID}-timeout`}
              label="Scrape timeout"
              value={form.scrapeTimeout}
              onValue={set('scrapeTimeout')}
              errors={err('scrapeTimeout')}
              placeholder="default"
              hint="shorter than the interval"
            />
          </div>
          <AuthFields form={form} onChange={onChange} errors={err('auth')} />
        </fieldset>
      )}

      <LabelRows rows={form.labels} onRows={set('labels')} errors={errors} />
      <ThresholdRows rows={form.thresholds} onRows={set('thresholds')} errors={errors} />

      <div className="mw-editor-actions">
        <button type="submit" className="mw-primary" disabled={busy}>
          {isNew ? 'Add machine' : 'Save'}
        </button>
        <button type="button" onClick={props.onCancel} disabled={busy}>
          Cancel
        </button>
        {props.onDelete && (
          <button type="button" className="mw-danger" onClick={props.onDelete} disabled={busy}>
            Delete…
          </button>
        )}
      </div>
    </form>
  );
}

function AuthFields({ form, onChange, errors }: { form: MachineForm; onChange: MachineFormViewProps['onChange']; errors: string[] | undefined }) {
  const auth = form.auth;
  const setAuth = (patch: Partial<MachineForm['auth']>) => onChange((f) => ({ ...f, auth: { ...f.auth, ...patch } }));
  const masked = [auth.reference, auth.password].includes(MASKED);
  return (
    <div className="mw-field-group">
      <div className="mw-field">
        <label htmlFor={`${ID}-auth-kind`}>Exporter authentication</label>
        <select id={`${ID}-auth-kind`} value={auth.kind} onChange={(e) => setAuth({ kind: e.target.value as AuthKind })}>
          <option value="none">none</option>
          <option value="bearer_token_file">bearer token from a file</option>
          <option value="bearer_token_env">bearer token from an environment variable</option>
          <option value="basic">basic auth</option>
        </select>
      </div>
      {(auth.kind === 'bearer_token_file' || auth.kind === 'bearer_token_env') && (
        <TextField
          id={`${ID}-auth-ref`}
          label={auth.kind === 'bearer_token_file' ? 'Token file (on the central host)' : 'Environment variable'}
          value={auth.reference}
          onValue={(v) => setAuth({ reference: v })}
        />
      )}
      {auth.kind === 'basic' && (
        <>
          <TextField id={`${ID}-auth-user`} label="User name" value={auth.username} onValue={(v) => setAuth({ username: v })} />
          <div className="mw-field">
            <label htmlFor={`${ID}-auth-pwkind`}>Password from</label>
            <select
              id={`${ID}-auth-pwkind`}
              value={auth.passwordKind}
              onChange={(e) => setAuth({ passwordKind: e.target.value === 'password_env' ? 'password_env' : 'password_file' })}
            >
              <option value="password_file">a file</option>
              <option value="password_env">an environment variable</option>
            </select>
          </div>
          <TextField
            id={`${ID}-auth-pw`}
            label={auth.passwordKind === 'password_file' ? 'Password file' : 'Password variable'}
            value={auth.password}
            onValue={(v) => setAuth({ password: v })}
          />
        </>
      )}
      {masked && <p className="mw-field-hint">*** is hidden by the server: leave it as it is to keep the current value.</p>}
      <FieldError id={`${ID}-auth-error`} messages={errors} />
    </div>
  );
}

function LabelRows({ rows, onRows, errors }: { rows: LabelRow[]; onRows: (rows: LabelRow[]) => void; errors: Map<FieldKey, string[]> }) {
  const update = (i: number, patch: Partial<LabelRow>) => onRows(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <fieldset>
      <legend>Labels</legend>
      {rows.length === 0 && <p className="mw-field-hint">No labels.</p>}
      {rows.map((row, i) => (
        // Rows are identified by position: keys may be empty or repeated while typed.
        <div className="mw-row" key={i} role="group" aria-label={`Label ${i + 1}`}>
          <TextField id={`${ID}-label-${i}-key`} label="Name" value={row.key} onValue={(v) => update(i, { key: v })} errors={errors.get(`label.${i}.key`)} />
          <TextField id={`${ID}-label-${i}-value`} label="Value" value={row.value} onValue={(v) => update(i, { value: v })} errors={errors.get(`label.${i}.value`)} />
          <button type="button" onClick={() => onRows(rows.filter((_, j) => j !== i))} aria-label={`Remove label ${row.key || i + 1}`}>
            Remove
          </button>
        </div>
      ))}
      <FieldError id={`${ID}-labels-error`} messages={errors.get('labels')} />
      <button type="button" onClick={() => onRows([...rows, { key: '', value: '' }])}>
        Add label
      </button>
    </fieldset>
  );
}

function ThresholdRows({
  rows,
  onRows,
  errors,
}: {
  rows: ThresholdRow[];
  onRows: (rows: ThresholdRow[]) => void;
  errors: Map<FieldKey, string[]>;
}) {
  const update = (i: number, patch: Partial<ThresholdRow>) => onRows(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <fieldset>
      <legend>Thresholds</legend>
      <p className="mw-field-hint">Per metric; merged with the defaults of machines.yaml. A value at or above a limit is warn / alarm.</p>
      {rows.map((row, i) => (
        <div className="mw-row" key={i} role="group" aria-label={`Threshold ${i + 1}`}>
          <TextField
            id={`${ID}-th-${i}-metric`}
            label="Metric"
            value={row.metric}
            onValue={(v) => update(i, { metric: v })}
            errors={errors.get(`threshold.${i}.metric`)}
            placeholder="machine_temperature_celsius"
          />
          <TextField id={`${ID}-th-${i}-warn`} label="Warn" value={row.warn} onValue={(v) => update(i, { warn: v })} errors={errors.get(`threshold.${i}.warn`)} inputMode="decimal" />
          <TextField id={`${ID}-th-${i}-alarm`} label="Alarm" value={row.alarm} onValue={(v) => update(i, { alarm: v })} errors={errors.get(`threshold.${i}.alarm`)} inputMode="decimal" />
          <button type="button" onClick={() => onRows(rows.filter((_, j) => j !== i))} aria-label={`Remove threshold ${row.metric || i + 1}`}>
            Remove
          </button>
        </div>
      ))}
      <FieldError id={`${ID}-thresholds-error`} messages={errors.get('thresholds')} />
      <button type="button" onClick={() => onRows([...rows, { metric: '', warn: '', alarm: '' }])}>
        Add threshold
      </button>
    </fieldset>
  );
}
