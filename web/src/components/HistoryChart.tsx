import { useEffect, useRef, useState } from 'react';
import type uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatNumber, formatReading, formatTick, metricLabel, unitOf } from '../format';
import { chartColumns, type FetchLike, fetchHistory, type History, HistoryError, historyUrl, summarize } from '../history';
import type { Threshold } from '../types';

export interface HistoryChartProps {
  machineId: string;
  metric: string;
  start: number;
  end: number;
  step: number;
  threshold: Threshold | undefined;
  /** Dark colours for wall mode. */
  dark?: boolean;
  fetchFn?: FetchLike;
}

type Loaded = { kind: 'loading' } | { kind: 'error'; message: string } | { kind: 'ok'; history: History };

const AVG = '#1f5fa8';
const BAND = 'rgba(31, 95, 168, 0.18)';
const EDGE = 'rgba(31, 95, 168, 0.55)';
const WARN = '#b26a00';
const ALARM = '#c62828';

/** uPlot's options and data for one history: min/max band, avg line, warn/alarm as dashed lines. */
export function chartSetup(
  history: History,
  threshold: Threshold | undefined,
  width: number,
  dark = false,
): { options: uPlot.Options; data: uPlot.AlignedData } {
  const [xs, mins, avgs, maxs] = chartColumns(history);
  const unit = unitOf(history.metric);
  const value = (v: number | null) => (v === null ? '—' : formatReading(history.metric, v));
  const ink = dark ? '#d8e0e8' : '#16202a';
  const grid = dark ? 'rgba(255,255,255,0.12)' : 'rgba(0,0,0,0.08)';
  const series: uPlot.Series[] = [
    {},
    { label: 'min', stroke: EDGE, width: 1, value: (_u, v) => value(v) },
    { label: 'avg', stroke: dark ? '#7fb2ff' : AVG, width: 2, value: (_u, v) => value(v) },
    { label: 'max', stroke: EDGE, width: 1, value: (_u, v) => value(v) },
  ];
  const data: (number | null)[][] = [xs, mins, avgs, maxs];
  // The limits are drawn as constant series: they are in the legend with their value in words
  // (never colour alone), and the y-axis always reaches them, so "how close" is visible.
  for (const level of ['warn', 'alarm'] as const) {
    const limit = threshold?.[level] ?? null;
    if (limit === null || xs.length === 0) continue;
    series.push({
      label: `${level} ${formatNumber(limit)}${unit === null ? '' : ` ${unit}`}`,
      stroke: level === 'warn' ? WARN : ALARM,
      width: 1.5,
      dash: level === 'warn' ? [8, 4] : [3, 3],
      points: { show: false },
      value: () => '',
    });
    data.push(xs.map(() => limit));
  }
  const options: uPlot.Options = {
    width,
    height: 190,
    scales: { x: { time: true } },
    series,
    bands: [{ series: [3, 1], fill: BAND }],
    axes: [
      { stroke: ink, grid: { stroke: grid } },
      { stroke: ink, grid: { stroke: grid }, size: 56, values: (_u, splits, _axis, _space, increment) => splits.map((v) => formatTick(v, increment)) },
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  return { options, data: data as uPlot.AlignedData };
}

/**
 * One channel's history over [start, end]: fetched from the history API, drawn with uPlot,
 * with its lowest/mean/highest value in words and a CSV link of the same numbers.
 */
export function HistoryChart({ machineId, metric, start, end, step, threshold, dark = false, fetchFn }: HistoryChartProps) {
  const [loaded, setLoaded] = useState<Loaded>({ kind: 'loading' });
  const holder = useRef<HTMLDivElement>(null);
  const query = { machineId, metric, start, end, step };

  useEffect(() => {
    const controller = new AbortController();
    setLoaded((l) => (l.kind === 'ok' ? l : { kind: 'loading' }));
    fetchHistory({ machineId, metric, start, end, step }, fetchFn, controller.signal).then(
      (history) => setLoaded({ kind: 'ok', history }),
      (e: unknown) => {
        if (controller.signal.aborted) return;
        setLoaded({ kind: 'error', message: e instanceof HistoryError ? e.message : String(e) });
      },
    );
    return () => controller.abort();
  }, [machineId, metric, start, end, step, fetchFn]);

  const history = loaded.kind === 'ok' ? loaded.history : null;
  // The limits by value: a live update brings new objects with the same numbers, no redraw.
  const warn = threshold?.warn ?? null;
  const alarm = threshold?.alarm ?? null;
  useEffect(() => {
    const node = holder.current;
    if (node === null || history === null || history.points.length === 0) return;
    const width = Math.max(240, node.clientWidth || 360);
    const { options, data } = chartSetup(history, { warn, alarm }, width, dark);
    let plot: uPlot | null = null;
    let alive = true;
    // uPlot is loaded with the first chart: the map alone does not pay for it.
    import('uplot').then(
      ({ default: UPlot }) => {
        if (!alive) return;
        try {
          plot = new UPlot(options, data, node);
        } catch (e) {
          // No canvas (an old browser, a test's DOM): the numbers below the chart still say it.
          console.error('millwatch: the chart could not be drawn', e);
        }
      },
      (e: unknown) => console.error('millwatch: the chart library could not be loaded', e),
    );
    const observer =
      typeof ResizeObserver === 'undefined'
        ? null
        : new ResizeObserver(() => {
            const w = Math.max(240, node.clientWidth);
            if (plot !== null && Math.abs(plot.width - w) > 4) plot.setSize({ width: w, height: 190 });
          });
    observer?.observe(node);
    return () => {
      alive = false;
      observer?.disconnect();
      plot?.destroy();
    };
  }, [history, warn, alarm, dark]);

  const stats = history === null ? null : summarize(history.points);
  return (
    <figure className="mw-chart" data-testid={`chart-${metric}`} data-points={history?.points.length ?? ''}>
      <figcaption className="mw-chart-head">
        <strong>{metricLabel(metric)}</strong>
        {unitOf(metric) !== null && <span className="mw-muted"> ({unitOf(metric)})</span>}{' '}
        <a className="mw-chart-csv" href={historyUrl(query, true)} download data-testid={`csv-${metric}`}>
          CSV
        </a>
      </figcaption>
      {loaded.kind === 'loading' && <p className="mw-muted">Loading history…</p>}
      {loaded.kind === 'error' && (
        <p className="mw-chart-error" role="status">
          History not available: {loaded.message}.
        </p>
      )}
      {history !== null && history.points.length === 0 && <p className="mw-muted">No data in this range.</p>}
      <div ref={holder} className="mw-chart-plot" />
      {stats !== null && (
        <p className="mw-chart-stats" data-testid={`chart-stats-${metric}`}>
          min {formatReading(metric, stats.min)} · avg {formatReading(metric, stats.avg)} · max{' '}
          {formatReading(metric, stats.max)}
        </p>
      )}
    </figure>
  );
}
