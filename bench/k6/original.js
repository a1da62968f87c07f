// The original platform's k6 load test, replayed the way the original ran it:
// 100 virtual users on one machine, all from one client address, no
// X-Forwarded-For header, 1-3 s of think time, five scenarios weighted
// 3:2:2:1:1, the demo accounts. On top of the original's thresholds it gates
// ours: not one 429, not one 5xx, and p95 < 5 ms for every request but login.
//
//   k6 run -e BASE_URL=http://127.0.0.1:3002 -e PROFILE=ci bench/k6/original.js
//
// Env: BASE_URL (default http://127.0.0.1:3002); PROFILE = ci (about a
// minute), quick (the full stages compressed twelvefold, 2 minutes), full
// (the original's 24 minutes), scale (VUS users, default 1000: a minute's
// ramp, three minutes' hold) or climb (100, 500, 1,000, 2,000, 3,000 and
// 5,000 users, each reached in CLIMB_RAMP, default 30s, and held CLIMB_HOLD,
// default 1m); SUMMARY_JSON, a path for the JSON summary.
//
// scale and climb go beyond what the original asked, to see where one
// machine and one address end: a load balancer polls GET /api/v1/healthz
// and GET /livez twice a second each beside the users (the probes' latency
// is reported per probe, /healthz within 3x of /livez is judged), and a
// sign-in the cores cannot hash in time gets 503 with Retry-After (counted
// as shed, not failed: the machine's limit, said honestly). Every other
// request must succeed; latency bounds are the issue's (p95 under 3 s for
// all, under 1 s outside sign-in).

import http from 'k6/http';
import { check, fail, sleep } from 'k6';
import { Counter, Rate } from 'k6/metrics';
import exec from 'k6/execution';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:3002').replace(/\/+$/, '');
const API = `${BASE_URL}/api/v1`;
const PROFILE = __ENV.PROFILE || 'ci';

// The original's shape: ramp over a minute, hold five, at 10, 25, 50 and 100
// users. `quick` is the same shape twelve times shorter.
function originalStages(ramp, hold) {
  return [10, 25, 50, 100].flatMap((target) => [
    { duration: ramp, target },
    { duration: hold, target },
  ]);
}

const STAGES = {
  full: originalStages('1m', '5m'),
  quick: originalStages('5s', '25s'),
  scale: [
    { duration: '1m', target: Number(__ENV.VUS || 1000) },
    { duration: '3m', target: Number(__ENV.VUS || 1000) },
    { duration: '10s', target: 0 },
  ],
  climb: [100, 500, 1000, 2000, 3000, 5000].flatMap((target) => [
    { duration: __ENV.CLIMB_RAMP || '30s', target },
    { duration: __ENV.CLIMB_HOLD || '1m', target },
  ]).concat([{ duration: '10s', target: 0 }]),
  ci: [
    { duration: '10s', target: 20 },
    { duration: '20s', target: 100 },
    { duration: '25s', target: 100 },
    { duration: '5s', target: 0 },
  ],
};

if (!STAGES[PROFILE]) {
  throw new Error(`PROFILE must be one of ${Object.keys(STAGES).join(', ')}, not "${PROFILE}"`);
}

// Request names: every request carries one as its `name` tag, so latency is
// reported, and judged, per endpoint rather than per URL.
const N = {
  list: 'GET /api/v1/offerings',
  detail: 'GET /api/v1/offerings/{slug}',
  login: 'POST /api/v1/auth/login',
  draft: 'POST /api/v1/orders/draft',
  webhook: 'POST /api/v1/payments/webhooks/stripe',
  orders: 'GET /api/v1/orders',
};
const NON_LOGIN = [N.list, N.detail, N.draft, N.webhook, N.orders];
const PROBES = { healthz: 'GET /api/v1/healthz (probe)', livez: 'GET /livez (probe)' };
// Beyond the original: probes beside the users, sign-ins past the cores'
// hashing capacity shed with 503.
const AT_SCALE = PROFILE === 'scale' || PROFILE === 'climb';

// LATENCY_GATES=off (what CI sets): latency is reported per endpoint but
// decides nothing, since a shared CI machine's timing is noise; the run still
// fails on any error, 429 or 5xx. Speed is judged by full runs (README).
const LATENCY_GATES = (__ENV.LATENCY_GATES || 'on') !== 'off';
const bound = (expression) => [LATENCY_GATES ? expression : 'p(95)>=0'];

const thresholds = {
  // The original's (at scale: the issue's 3 s).
  http_req_duration: bound(AT_SCALE ? 'p(95)<3000' : 'p(95)<500'),
  http_req_failed: ['rate<0.005'],
  errors: ['rate<0.001'],
  // Ours: honest traffic from one address is never throttled, nothing breaks.
  rate_limited: ['count==0'],
  server_errors: ['count==0'],
  // Login is bound by Argon2id: it keeps only the original's bound.
  [`http_req_duration{name:${N.login}}`]: bound(AT_SCALE ? 'p(95)<3000' : 'p(95)<500'),
};
// 5 ms is the bound for a release build; CI runs the debug build, which is
// several times slower per request, and sets NON_LOGIN_P95_MS looser. At
// scale the bound is a second.
const NON_LOGIN_P95_MS = Number(__ENV.NON_LOGIN_P95_MS || (AT_SCALE ? 1000 : 5));
for (const name of NON_LOGIN) {
  thresholds[`http_req_duration{name:${name}}`] = bound(`p(95)<${NON_LOGIN_P95_MS}`);
}
if (AT_SCALE) {
  for (const name of Object.values(PROBES)) {
    thresholds[`http_req_duration{name:${name}}`] = bound(`p(95)<${NON_LOGIN_P95_MS}`);
  }
  // Figures per number of users (the stages that hold it), reported only.
  for (const level of holdLevels()) {
    thresholds[`http_reqs{level:${level}}`] = ['count>=0'];
    thresholds[`http_req_duration{level:${level}}`] = ['p(95)>=0'];
    thresholds[`http_req_duration{level:${level},kind:other}`] = ['p(95)>=0'];
    thresholds[`http_req_duration{level:${level},kind:signin}`] = ['p(95)>=0'];
    for (const name of Object.values(PROBES)) {
      thresholds[`http_req_duration{level:${level},name:${name}}`] = ['p(95)>=0'];
    }
    thresholds[`shed{level:${level}}`] = ['count>=0'];
    thresholds[`server_errors{level:${level}}`] = ['count>=0'];
    thresholds[`rate_limited{level:${level}}`] = ['count>=0'];
  }
}

// The user counts a profile holds: a stage whose target is the previous
// stage's holds it.
function holdLevels() {
  const levels = [];
  STAGES[PROFILE].forEach((stage, i) => {
    if (i > 0 && STAGES[PROFILE][i - 1].target === stage.target && stage.target > 0) levels.push(stage.target);
  });
  return levels;
}

// Tags what this virtual user sends from now on with the number of users
// the current stage holds ('ramp' while the number changes).
function tagLevel() {
  const elapsed = (Date.now() - exec.scenario.startTime) / 1000;
  let end = 0;
  let level = 'ramp';
  STAGES[PROFILE].forEach((stage, i) => {
    const start = end;
    end += seconds(stage.duration);
    const holds = i > 0 && STAGES[PROFILE][i - 1].target === stage.target;
    if (elapsed >= start && elapsed < end && holds) level = String(stage.target);
  });
  exec.vu.tags.level = level;
  exec.vu.tags.kind = 'other';
}

const stagesSeconds = STAGES[PROFILE].reduce((sum, stage) => sum + seconds(stage.duration), 0);

function seconds(duration) {
  const m = String(duration).match(/^(\d+)(s|m)$/);
  if (!m) throw new Error(`durations are written like 30s or 2m, not ${duration}`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}

export const options = {
  scenarios: {
    users: { executor: 'ramping-vus', startVUs: 0, stages: STAGES[PROFILE], exec: 'users' },
    ...(AT_SCALE
      ? {
          probes: {
            executor: 'constant-arrival-rate',
            rate: 2,
            timeUnit: '1s',
            duration: `${stagesSeconds}s`,
            preAllocatedVUs: 4,
            maxVUs: 40,
            exec: 'probe',
          },
        }
      : {}),
  },
  thresholds,
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'],
};

// Checks that failed (the original's custom metric), 429 answers, 5xx answers.
const errors = new Rate('errors');
const rateLimited = new Counter('rate_limited');
const serverErrors = new Counter('server_errors');
// At scale: sign-ins refused with 503 because the cores cannot hash them in
// time (the machine's limit, not a failure).
const shed = new Counter('shed');

// The original's load script logged in with these.
const ACCOUNTS = [
  ['admin@test.com', 'admin123'],
  ['tutor@test.com', 'password123'],
  ['student@test.com', 'password123'],
  ['student1@test.com', 'password123'],
  ['student2@test.com', 'password123'],
  ['student3@test.com', 'password123'],
  ['student4@test.com', 'password123'],
  ['student5@test.com', 'password123'],
];

// Plain JSON headers. Deliberately no X-Forwarded-For (nor any other
// forwarding header): every virtual user is the same client address, as
// when the original ran this test from one machine.
const JSON_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json' };

// Per virtual user (each VU has its own copy of module state): the access
// token of its latest successful login, when that token stops being good, and
// the last order it drafted.
let token = null;
let tokenGoodUntil = 0;
let lastOrderId = null;

function pick(items) {
  return items[Math.floor(Math.random() * items.length)];
}

function randomId(length) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < length; i += 1) s += alphabet[Math.floor(Math.random() * alphabet.length)];
  return s;
}

function body(res) {
  try {
    return res.json();
  } catch (_) {
    return undefined;
  }
}

// Counts what every response says about the server, whatever the scenario.
function observe(res, sheddable) {
  const isShed = !!sheddable && res.status === 503;
  rateLimited.add(res.status === 429 ? 1 : 0);
  serverErrors.add(res.status >= 500 && !isShed ? 1 : 0);
  shed.add(isShed ? 1 : 0);
  return res;
}

// A check whose failure also counts in `errors`, as the original's did.
function verify(res, name, assertions) {
  const named = {};
  for (const [what, fn] of Object.entries(assertions)) named[`${name}: ${what}`] = fn;
  const ok = check(res, named, { name });
  errors.add(!ok);
  return ok;
}

function auth() {
  return { headers: { ...JSON_HEADERS, Authorization: `Bearer ${token}` } };
}

function login() {
  const [email, password] = pick(ACCOUNTS);
  const res = observe(
    http.post(`${API}/auth/login`, JSON.stringify({ email, password }), {
      headers: JSON_HEADERS,
      tags: { name: N.login, kind: 'signin' },
      ...(AT_SCALE ? { responseCallback: http.expectedStatuses(200, 503) } : {}),
    }),
    AT_SCALE,
  );
  const data = body(res);
  if (AT_SCALE && res.status === 503) {
    verify(res, N.login, { '503 at capacity says when to retry': (r) => !!r.headers['Retry-After'] });
    return false;
  }
  const ok = verify(res, N.login, {
    '200 with accessToken': (r) => r.status === 200 && !!data && typeof data.accessToken === 'string',
  });
  if (ok) {
    token = data.accessToken;
    // Log in again a minute before the token expires (matters in `full`).
    const lifetime = typeof data.expiresIn === 'number' ? data.expiresIn : 900;
    tokenGoodUntil = Date.now() + Math.max(lifetime - 60, 1) * 1000;
  }
  return ok;
}

function ensureToken() {
  if (token && Date.now() < tokenGoodUntil) return true;
  token = null;
  return login();
}

function forgetTokenOn401(res) {
  if (res.status === 401) token = null;
}

function listOfferings() {
  const res = observe(http.get(`${API}/offerings`, { headers: JSON_HEADERS, tags: { name: N.list } }));
  const data = body(res);
  const ok = verify(res, N.list, {
    '200 non-empty JSON array': (r) => r.status === 200 && Array.isArray(data) && data.length > 0,
  });
  return ok ? data : null;
}

// weight 3: the catalogue, then one offering of it.
function browse() {
  const offerings = listOfferings();
  if (!offerings) return;
  const { slug } = pick(offerings);
  const res = observe(
    http.get(`${API}/offerings/${encodeURIComponent(slug)}`, {
      headers: JSON_HEADERS,
      tags: { name: N.detail },
    }),
  );
  const data = body(res);
  verify(res, N.detail, { '200 that offering': (r) => r.status === 200 && !!data && data.slug === slug });
}

// weight 2: a random demo account logs in; the VU keeps its token.
function signIn() {
  login();
}

// weight 2: signed in, list the catalogue and draft an order of one item.
function draft() {
  if (!ensureToken()) return;
  const offerings = listOfferings();
  if (!offerings) return;
  const offering = pick(offerings);
  const variants = offering.variants || [];
  const payload = {
    offeringId: offering.id,
    variantId: variants.length > 0 ? variants[0].id : null,
    quantity: 1,
  };
  const res = observe(
    http.post(`${API}/orders/draft`, JSON.stringify(payload), { ...auth(), tags: { name: N.draft } }),
  );
  forgetTokenOn401(res);
  const data = body(res);
  const ok = verify(res, N.draft, {
    '201 with checkoutUrl': (r) =>
      (r.status === 201 || r.status === 200) && !!data && typeof data.checkoutUrl === 'string',
  });
  if (ok) lastOrderId = data.id || data.orderId || null;
}

// weight 1: the original's webhook, with a forged signature. The original
// took 200 or 401; anything else fails the request and the check.
function webhook() {
  const event = {
    id: `evt_test_${randomId(24)}`,
    object: 'event',
    type: 'payment_intent.succeeded',
    created: Math.floor(Date.now() / 1000),
    data: {
      object: {
        id: `pi_test_${randomId(24)}`,
        object: 'payment_intent',
        amount: 4900,
        currency: 'usd',
        status: 'succeeded',
        metadata: { orderId: lastOrderId || `order_test_${randomId(12)}` },
      },
    },
  };
  const res = observe(
    http.post(`${API}/payments/webhooks/stripe`, JSON.stringify(event), {
      headers: { ...JSON_HEADERS, 'stripe-signature': `test_signature_${randomId(16)}` },
      tags: { name: N.webhook },
      responseCallback: http.expectedStatuses(200, 401),
    }),
  );
  verify(res, N.webhook, { '200 or 401': (r) => r.status === 200 || r.status === 401 });
}

// weight 1: the signed-in user's orders.
function ordersList() {
  if (!ensureToken()) return;
  const res = observe(http.get(`${API}/orders`, { ...auth(), tags: { name: N.orders } }));
  forgetTokenOn401(res);
  const data = body(res);
  verify(res, N.orders, { '200 JSON array': (r) => r.status === 200 && Array.isArray(data) });
}

const SCENARIOS = [
  [3, browse],
  [2, signIn],
  [2, draft],
  [1, webhook],
  [1, ordersList],
];
const TOTAL_WEIGHT = SCENARIOS.reduce((sum, [weight]) => sum + weight, 0);

export function setup() {
  const res = http.get(`${BASE_URL}/readyz`, { tags: { name: 'GET /readyz (setup)' } });
  if (res.status !== 200) fail(`${BASE_URL}/readyz answered ${res.status}: is the server up?`);
}

// One iteration: one scenario drawn by weight, then 1-3 s of think time.
export function users() {
  if (AT_SCALE) tagLevel();
  let r = Math.random() * TOTAL_WEIGHT;
  for (const [weight, scenario] of SCENARIOS) {
    r -= weight;
    if (r < 0) {
      scenario();
      break;
    }
  }
  sleep(1 + Math.random() * 2);
}

export default users;

// A load balancer's health checks: the full report and the liveness probe,
// one after the other, so their latencies compare under the same load.
export function probe() {
  tagLevel();
  for (const [name, url] of [
    [PROBES.healthz, `${API}/healthz`],
    [PROBES.livez, `${BASE_URL}/livez`],
  ]) {
    const res = observe(http.get(url, { tags: { name } }));
    verify(res, name, { '200': (r) => r.status === 200 });
  }
}

// ---- end-of-test summary ------------------------------------------------
// k6's own text summary lives in a jslib module fetched over the network at
// run time, which CI cannot reach; this prints the figures that matter here.

function ms(v) {
  if (typeof v !== 'number') return '-';
  if (v >= 1000) return `${(v / 1000).toFixed(2)}s`;
  if (v >= 100) return `${v.toFixed(0)}ms`;
  if (v >= 10) return `${v.toFixed(1)}ms`;
  return `${v.toFixed(2)}ms`;
}

function pad(s, n, right) {
  const str = String(s);
  if (str.length >= n) return str;
  const fill = ' '.repeat(n - str.length);
  return right ? fill + str : str + fill;
}

function observed(metric, expr) {
  const v = metric.values;
  const m = expr.match(/^(p\(\d+(?:\.\d+)?\)|avg|min|med|max|count|rate)/);
  const key = m ? m[1] : '';
  if (metric.type === 'trend') return `${key}=${ms(v[key])}`;
  if (metric.type === 'rate') return `rate=${(100 * v.rate).toFixed(2)}% (${v.passes} of ${v.passes + v.fails})`;
  if (metric.type === 'counter') return `count=${v.count}`;
  return JSON.stringify(v);
}

function textSummary(data) {
  const metrics = data.metrics;
  const lines = [];
  const secs = data.state.testRunDurationMs / 1000;
  lines.push('');
  lines.push(`WeMaster: the original k6 load test, profile ${PROFILE}, ${BASE_URL}, ${secs.toFixed(1)} s`);
  if (!LATENCY_GATES) lines.push('latency reported, not gated (LATENCY_GATES=off)');
  lines.push('one client address, no X-Forwarded-For, 1-3 s think time, mix 3:2:2:1:1');
  lines.push('');

  lines.push('THRESHOLDS');
  let failed = 0;
  // The per-level sub-metrics only report (table below).
  for (const name of Object.keys(metrics).sort().filter((n) => !n.includes('level:'))) {
    const metric = metrics[name];
    for (const [expr, result] of Object.entries(metric.thresholds || {})) {
      if (!result.ok) failed += 1;
      lines.push(`  ${result.ok ? 'PASS' : 'FAIL'}  ${pad(name, 62)} ${pad(expr, 12)} ${observed(metric, expr)}`);
    }
  }
  lines.push('');

  lines.push('REQUESTS');
  lines.push(
    `  ${pad('name', 40)}${['count', 'avg', 'p50', 'p90', 'p95', 'p99', 'max'].map((h) => pad(h, 9, true)).join('')}`,
  );
  const row = (label, metric) => {
    if (!metric) return;
    const v = metric.values;
    const cells = [v.count, ms(v.avg), ms(v.med), ms(v['p(90)']), ms(v['p(95)']), ms(v['p(99)']), ms(v.max)];
    lines.push(`  ${pad(label, 40)}${cells.map((c) => pad(c, 9, true)).join('')}`);
  };
  row('all requests', metrics.http_req_duration);
  for (const name of [N.list, N.detail, N.login, N.draft, N.webhook, N.orders, PROBES.healthz, PROBES.livez]) {
    row(name, metrics[`http_req_duration{name:${name}}`]);
  }
  lines.push('');
  if (AT_SCALE) {
    lines.push('PER NUMBER OF USERS (while held)');
    lines.push(
      `  ${pad('users', 6)}${['requests', 'req/s', 'p95 all', 'p95 other', 'p95 login', 'healthz', 'livez', 'shed', '429', '5xx']
        .map((h) => pad(h, 10, true))
        .join('')}`,
    );
    const hold = seconds(__ENV.CLIMB_HOLD || '1m');
    for (const level of holdLevels()) {
      const m = (key) => metrics[key];
      const p95 = (key) => (m(key) && m(key).values.count ? ms(m(key).values['p(95)']) : '-');
      const n = (key) => (m(key) ? m(key).values.count : 0);
      const count = n(`http_reqs{level:${level}}`);
      const seconds_ = PROFILE === 'climb' ? hold : seconds('3m');
      lines.push(
        `  ${pad(level, 6)}${[
          count,
          (count / seconds_).toFixed(0),
          p95(`http_req_duration{level:${level}}`),
          p95(`http_req_duration{level:${level},kind:other}`),
          p95(`http_req_duration{level:${level},kind:signin}`),
          p95(`http_req_duration{level:${level},name:${PROBES.healthz}}`),
          p95(`http_req_duration{level:${level},name:${PROBES.livez}}`),
          n(`shed{level:${level}}`),
          n(`rate_limited{level:${level}}`),
          n(`server_errors{level:${level}}`),
        ]
          .map((c) => pad(c, 10, true))
          .join('')}`,
      );
    }
    lines.push('');
  }
  const probeRatio = healthzOverLivez(metrics);
  if (probeRatio !== null) {
    if (probeRatio.fail) failed += 1;
    lines.push(
      `  ${probeRatio.fail ? 'FAIL' : 'PASS'}  /healthz p95 within 3x of /livez p95 (or within 5 ms of it): ${probeRatio.text}`,
    );
    lines.push('');
  }

  const reqs = metrics.http_reqs ? metrics.http_reqs.values : { count: 0, rate: 0 };
  const failedReqs = metrics.http_req_failed ? metrics.http_req_failed.values : { passes: 0, fails: 0, rate: 0 };
  const count = (name) => (metrics[name] ? metrics[name].values.count : 0);
  lines.push('TOTALS');
  lines.push(`  http_reqs        ${reqs.count} (${reqs.rate.toFixed(1)}/s)`);
  lines.push(
    `  http_req_failed  ${(100 * failedReqs.rate).toFixed(2)}% (${failedReqs.passes} of ${failedReqs.passes + failedReqs.fails})`,
  );
  lines.push(`  rate_limited     ${count('rate_limited')} responses 429`);
  lines.push(`  server_errors    ${count('server_errors')} responses 5xx`);
  if (AT_SCALE) lines.push(`  shed             ${count('shed')} sign-ins answered 503 + Retry-After (hashing at capacity)`);
  if (metrics.errors) lines.push(`  errors           ${(100 * metrics.errors.values.rate).toFixed(2)}% of checks failed`);
  lines.push(`  iterations       ${count('iterations')}`);
  if (metrics.vus_max) lines.push(`  vus_max          ${metrics.vus_max.values.max}`);
  lines.push('');

  lines.push('CHECKS');
  for (const c of data.root_group.checks || []) {
    lines.push(`  ${c.fails === 0 ? 'PASS' : 'FAIL'}  ${pad(c.name, 60)} ${c.passes} passed, ${c.fails} failed`);
  }
  lines.push('');
  lines.push(failed === 0 ? 'K6 PASS: every threshold held' : `K6 FAIL: ${failed} threshold(s) crossed`);
  lines.push('');
  return lines.join('\n');
}

// The probes' p95s side by side; below 5 ms apart both are noise.
function healthzOverLivez(metrics) {
  const h = metrics[`http_req_duration{name:${PROBES.healthz}}`];
  const l = metrics[`http_req_duration{name:${PROBES.livez}}`];
  if (!h || !l || !h.values.count || !l.values.count) return null;
  const hp = h.values['p(95)'];
  const lp = l.values['p(95)'];
  const ratio = lp > 0 ? hp / lp : 1;
  return {
    fail: LATENCY_GATES && ratio > 3 && hp - lp > 5,
    text: `${ms(hp)} vs ${ms(lp)} (${ratio.toFixed(2)}x)`,
  };
}

export function handleSummary(data) {
  const out = { stdout: textSummary(data) };
  // The profile, so `bench --baseline` compares runs of one profile only.
  if (__ENV.SUMMARY_JSON) out[__ENV.SUMMARY_JSON] = JSON.stringify({ ...data, profile: `k6 ${__ENV.PROFILE}` }, null, 2);
  return out;
}
