/** NodeMetrics: request counters and histograms rendered in the Prometheus text format. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeMetrics, maxCommandLabels } from '../../../src/api/http/index.ts';

const sampleLine = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? -?[0-9.e+-]+$|^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? (NaN|\+Inf|-Inf)$/;

test('histogram buckets are cumulative, with sum and count, per protocol and command', async () => {
  const m = new NodeMetrics({ processMetrics: false, defaultLabels: { node: 'n1' } });
  m.observe('resp', 'get', 0.04, true); // ≤ 50 µs
  m.observe('resp', 'get', 0.3, true); // ≤ 0.5 ms
  m.observe('resp', 'get', 9000, false); // > 5 s: only +Inf
  const text = await m.render();
  const line = (le: string): string | undefined => text.split('\n').find((l) => l.startsWith(`ringkv_request_duration_seconds_bucket{le="${le}",protocol="resp",command="get",node="n1"}`));
  assert.match(line('0.00005') ?? '', / 1$/);
  assert.match(line('0.00025') ?? '', / 1$/);
  assert.match(line('0.0005') ?? '', / 2$/);
  assert.match(line('5') ?? '', / 2$/);
  assert.match(line('+Inf') ?? '', / 3$/);
  assert.match(text, /ringkv_request_duration_seconds_count\{protocol="resp",command="get",node="n1"\} 3/);
  assert.match(text, /ringkv_request_duration_seconds_sum\{protocol="resp",command="get",node="n1"\} 9\.00034/);
  assert.match(text, /ringkv_requests_total\{protocol="resp",command="get",outcome="ok",node="n1"\} 2/);
  assert.match(text, /ringkv_requests_total\{protocol="resp",command="get",outcome="error",node="n1"\} 1/);
});

test('label values are escaped and the command label count is bounded', async () => {
  const m = new NodeMetrics({ processMetrics: false });
  m.observe('resp', 'we"ird\\name\n', 1, true);
  for (let i = 0; i < maxCommandLabels + 10; i++) m.observe('http', `cmd${i}`, 1, true);
  m.addGauge('ringkv_test_gauge', 'A gauge read at scrape time.', ['stat'], () => [{ labels: { stat: 'a' }, value: 7 }]);
  const text = await m.render();
  assert.match(text, /command="we\\"ird\\\\name\\n"/);
  const httpCommands = new Set([...text.matchAll(/ringkv_requests_total\{protocol="http",command="([^"]+)",outcome="ok"\}/g)].map((x) => x[1]));
  assert.equal(httpCommands.size, maxCommandLabels);
  assert.ok(httpCommands.has('other'));
  assert.match(text, /ringkv_requests_total\{protocol="http",command="other",outcome="ok"\} 11/);
  assert.match(text, /ringkv_test_gauge\{stat="a"\} 7/);
  for (const l of text.split('\n')) {
    if (l === '' || l.startsWith('#')) continue;
    assert.match(l, sampleLine, `not a Prometheus sample line: ${l}`);
  }
  const helps = text.split('\n').filter((l) => l.startsWith('# HELP ')).map((l) => l.split(' ')[2]);
  assert.equal(new Set(helps).size, helps.length, 'each metric family appears once');
});
