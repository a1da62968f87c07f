// One cached read, GET /api/v1/offerings?limit=100, at 10, 1,000 and
// 10,000 open connections in turn (LEVELS), each a closed loop of one
// virtual user per connection with no think time, HOLD_SECONDS each (default
// 20). All from one client address. Nothing the server does per request may
// cost more as connections grow, so requests per second should stay flat
// (whatever limit the load generator itself has on this machine shows as
// the same ceiling at every level).
//
//   cargo run --release --manifest-path bench/Cargo.toml -- --k6 sweep --server-bin target/release/wemaster

import http from 'k6/http';
import { check } from 'k6';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:3002').replace(/\/+$/, '');
const URL = `${BASE_URL}/api/v1/offerings?limit=100`;
const LEVELS = (__ENV.LEVELS || '10,1000,10000').split(',').map(Number);
const HOLD = Number(__ENV.HOLD_SECONDS || 20);
// Between levels: the previous level's connections close, the next open.
const GAP = 10;

const scenarios = {};
const thresholds = {};
LEVELS.forEach((vus, i) => {
  scenarios[`c${vus}`] = {
    executor: 'constant-vus',
    vus,
    duration: `${HOLD}s`,
    startTime: `${i * (HOLD + GAP)}s`,
    gracefulStop: '5s',
    exec: 'read',
    tags: { level: String(vus) },
  };
  // Sub-metrics exist only where a threshold names them; these only fail on
  // errors.
  thresholds[`http_reqs{level:${vus}}`] = ['count>0'];
  thresholds[`http_req_duration{level:${vus}}`] = ['p(95)>=0'];
  thresholds[`http_req_failed{level:${vus}}`] = ['rate<0.01'];
});

export const options = {
  scenarios,
  thresholds,
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max', 'count'],
};

export function read() {
  const res = http.get(URL, { tags: { name: 'GET /api/v1/offerings?limit=100' } });
  check(res, { '200': (r) => r.status === 200 });
}

function ms(v) {
  return typeof v === 'number' ? `${v.toFixed(v < 10 ? 2 : 1)}ms` : '-';
}

export function handleSummary(data) {
  const m = data.metrics;
  const lines = ['', `WeMaster: one cached read at ${LEVELS.join(', ')} connections, ${HOLD} s each, one address`, ''];
  lines.push('  connections   requests      req/s      p50      p95      p99   failed');
  let failed = 0;
  for (const vus of LEVELS) {
    const reqs = m[`http_reqs{level:${vus}}`];
    const dur = m[`http_req_duration{level:${vus}}`];
    const fail = m[`http_req_failed{level:${vus}}`];
    const count = reqs ? reqs.values.count : 0;
    const rate = fail ? fail.values.rate : 1;
    if (!reqs || rate >= 0.01) failed += 1;
    const d = dur ? dur.values : {};
    lines.push(
      `  ${String(vus).padStart(11)} ${String(count).padStart(10)} ${(count / HOLD).toFixed(0).padStart(10)} ` +
        `${ms(d.med).padStart(8)} ${ms(d['p(95)']).padStart(8)} ${ms(d['p(99)']).padStart(8)} ${(100 * rate).toFixed(2).padStart(7)}%`,
    );
  }
  lines.push('');
  lines.push(failed === 0 ? 'K6 PASS: every level answered' : `K6 FAIL: ${failed} level(s) failed`);
  lines.push('');
  const out = { stdout: lines.join('\n') };
  if (__ENV.SUMMARY_JSON) out[__ENV.SUMMARY_JSON] = JSON.stringify(data, null, 2);
  return out;
}
