import { describe, expect, it, vi } from 'vitest';
import { chartSetup } from '../src/components/HistoryChart';
import { chartColumns, chooseStep, fetchHistory, historyUrl, parseHistory, summarize } from '../src/history';
import { healthFacts } from '../src/scrapeHealth';

const Q = { machineId: 'forge_berlin', metric: 'machine_temperature_celsius', start: 1000, end: 4600, step: 15 };

describe('history', () => {
  it('chooses a round step: at most ~400 points, never below the scrape interval', () => {
    expect(chooseStep(3600, 15)).toBe(15);
    expect(chooseStep(3600, 1)).toBe(10);
    expect(chooseStep(86400, 15)).toBe(300);
    expect(chooseStep(7 * 86400, 15)).toBe(1800);
    expect(chooseStep(366 * 86400, 15)).toBe(86400);
    expect(chooseStep(3600, 0.5)).toBe(10);
  });

  it('builds the JSON and CSV URLs of the contract, the id escaped', () => {
    expect(historyUrl(Q)).toBe(
      '/api/machines/forge_berlin/history?metric=machine_temperature_celsius&start=1000&end=4600&step=15',
    );
    expect(historyUrl({ ...Q, machineId: 'a/b', start: 1000.7, end: 4599.2 }, true)).toBe(
      '/api/machines/a%2Fb/history.csv?metric=machine_temperature_celsius&start=1000&end=4600&step=15',
    );
  });

  it('drops malformed points and sorts the rest', () => {
    const h = parseHistory(
      {
        machine_id: 'forge_berlin',
        metric: Q.metric,
        start: 1000,
        end: 4600,
        step: 15,
        points: [
          { time: 1030, min: 1, avg: 2, max: 3, count: 2 },
          { time: 'x', min: 1 },
          null,
          { time: 1015, min: 0, avg: 'NaN', max: 4, count: 1 },
        ],
      },
      Q,
    );
    expect(h.points.map((p) => p.time)).toEqual([1015, 1030]);
    expect(h.points[0]!.avg).toBeNull();
    expect(parseHistory('nonsense', Q).points).toEqual([]);
  });

  it('shows a gap as a gap: a null where more than 2.5 steps pass without a point', () => {
    const h = parseHistory({ step: 15, points: [1000, 1015, 1030, 1200, 1215].map((time) => ({ time, min: 1, avg: 2, max: 3, count: 1 })) }, Q);
    const [xs, mins, avgs] = chartColumns(h);
    expect(xs).toEqual([1000, 1015, 1030, 1045, 1200, 1215]);
    expect(avgs[3]).toBeNull();
    expect(mins[4]).toBe(1);
  });

  it('summarizes min, count-weighted avg and max', () => {
    const points = [
      { time: 1, min: 1, avg: 2, max: 3, count: 3 },
      { time: 2, min: 0, avg: 6, max: 9, count: 1 },
    ];
    expect(summarize(points)).toEqual({ min: 0, avg: 3, max: 9 });
    expect(summarize([])).toBeNull();
  });

  it('draws the warn and alarm limits as labelled dashed lines and the min/max band', () => {
    const h = parseHistory({ points: [{ time: 1000, min: 70, avg: 72, max: 75, count: 2 }] }, Q);
    const { options, data } = chartSetup(h, { warn: 80, alarm: 95 }, 400);
    const labels = options.series.map((s) => s.label);
    expect(labels).toEqual([undefined, 'min', 'avg', 'max', 'warn 80 °C', 'alarm 95 °C']);
    expect(data[4]).toEqual([80]);
    expect(options.bands).toEqual([expect.objectContaining({ series: [3, 1] })]);
    expect(chartSetup(h, { warn: null, alarm: null }, 400).options.series).toHaveLength(4);
  });

  it('says why when the server refuses or has no history route', async () => {
    const notFound = vi.fn(async () => new Response('{"detail":"Not Found"}', { status: 404 }));
    await expect(fetchHistory(Q, notFound)).rejects.toThrow('no history for this machine on this server');
    const bad = vi.fn(async () => new Response(JSON.stringify({ detail: 'step: too small for the range' }), { status: 422 }));
    await expect(fetchHistory(Q, bad)).rejects.toThrow('step: too small for the range');
    const down = vi.fn(async () => {
      throw new TypeError('Failed to fetch');
    });
    await expect(fetchHistory(Q, down)).rejects.toThrow('the server cannot be reached');
  });
});

describe('scrape health', () => {
  it('shows the fields the server sends, named and formatted, and nothing when there are none', () => {
    const facts = healthFacts({
      id: 'x',
      scrape_health: {
        last_duration_seconds: 0.0123,
        samples_scraped: 42,
        consecutive_failures: 0,
        last_error: null,
        healthy: true,
        nested: { no: 1 },
      },
    });
    expect(facts.map((f) => [f.label, f.text])).toEqual([
      ['Last duration', '0.01 s'],
      ['Samples scraped', '42'],
      ['Consecutive failures', '0'],
      ['Last error', '—'],
      ['Healthy', 'yes'],
    ]);
    expect(healthFacts({ id: 'x' })).toEqual([]);
    expect(healthFacts(null)).toEqual([]);
  });
});
