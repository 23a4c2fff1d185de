// Reads the engine dashboard and the navigation page of a real d3kosd that is ingesting a
// replayed NMEA 2000 capture, in headless Chromium, as the helmsman would: the gauges must
// show the capture's values in the units the page names, arrive about once a second over
// the Signal K stream, draw the last hour's trend once the device has history, and show
// the device's alerts and levels in words. Both pages, filled, must pass axe-core (WCAG 2.1
// A and AA) and the helm screen's own rules in both themes.
//
// usage: node engine.mjs BASE_URL OUT_DIR EXPECT_JSON
//
// EXPECT_JSON holds the values the capture leaves on the bus, in SI as Signal K has them:
//   {"engine":"port","revolutions":30.8,"oilPressure":171900,"temperature":343.15,
//    "alternatorVoltage":12.1,"fuelRate":null,"runTime":null,"fuelLevel":null,
//    "batteryVoltage":null,"latitude":42.4783080,"longitude":-71.4232898,"sog":0,
//    "cogTrue":null,"headingTrue":null,"headingMagnetic":3.9324}
// A key that is absent or null is not checked. Each value shown must be within one unit of
// its last shown digit of the expected value, converted to the unit the page shows.
// Prints one JSON line per step and "N passed, M failed"; exits 1 when a step failed.

import fs from 'node:fs';
import path from 'node:path';
import { launch, violations } from './lib.mjs';

const [baseArg, outDir, expectPath] = process.argv.slice(2);
if (!baseArg || !outDir || !expectPath) {
  console.error('usage: node engine.mjs BASE_URL OUT_DIR EXPECT_JSON');
  process.exit(2);
}
const base = new URL(baseArg);
fs.mkdirSync(outDir, { recursive: true });
const expect = JSON.parse(fs.readFileSync(expectPath, 'utf8'));
const WAIT = { timeout: 60000 };
const VALUES_WAIT_MS = 60000;
const HISTORY_WAIT_MS = 180000;

/** What each expected key is, where the page shows it, and how SI becomes what is shown. */
const US_GALLON = 3.785411784e-3;
const PER_UNIT = {
  rpm: (v) => v * 60,
  bar: (v) => v / 1e5,
  psi: (v) => v / 6894.757293168,
  kPa: (v) => v / 1000,
  '°C': (v) => v - 273.15,
  '°F': (v) => ((v - 273.15) * 9) / 5 + 32,
  V: (v) => v,
  'L/h': (v) => v * 3.6e6,
  'gal/h': (v) => (v * 3600) / US_GALLON,
  h: (v) => v / 3600,
  '%': (v) => v * 100,
  kn: (v) => (v * 3600) / 1852,
  'km/h': (v) => v * 3.6,
  mph: (v) => (v * 3600) / 1609.344,
};
const DASHBOARD_KEYS = ['revolutions', 'oilPressure', 'temperature', 'alternatorVoltage', 'fuelRate', 'runTime', 'fuelLevel', 'batteryVoltage'];
const NAVIGATION_KEYS = ['latitude', 'longitude', 'sog', 'cogTrue', 'headingTrue', 'headingMagnetic'];
const ANGLES = ['cogTrue', 'headingTrue', 'headingMagnetic'];
const TREND_METRICS = ['revolutions', 'oilPressure', 'temperature', 'alternatorVoltage', 'fuelRate'];
const LEVEL_WORDS = { normal: 'Normal', info: 'Info', warning: 'Warning', critical: 'Critical' };

const unknown = Object.keys(expect).filter((k) => k !== 'engine' && !DASHBOARD_KEYS.includes(k) && !NAVIGATION_KEYS.includes(k));
const wanted = (keys) => keys.filter((k) => expect[k] !== null && expect[k] !== undefined);
const dashboardKeys = wanted(DASHBOARD_KEYS);
const navigationKeys = wanted(NAVIGATION_KEYS);
const engine = typeof expect.engine === 'string' && expect.engine ? expect.engine : null;

let passed = 0;
let failed = 0;
function report(step, problems, extra = {}) {
  if (problems.length) failed += 1;
  else passed += 1;
  console.log(JSON.stringify({ step, ok: problems.length === 0, problems, ...extra }));
}

function axeProblems(found) {
  return found.map((x) => `${x.id}: ${x.help} ${JSON.stringify(x.targets || [])}`);
}

/** "42° 28.698′ N" → [42.4783, 0.001/60]: degrees and the tolerance of the minutes shown. */
function parseDm(s) {
  const m = /^(\d{1,3})°\s*(\d{1,2}(?:\.(\d+))?)′\s*([NSEW])$/.exec(s.trim());
  if (!m) return null;
  const deg = Number(m[1]) + Number(m[2]) / 60;
  const step = 10 ** -(m[3] ? m[3].length : 0) / 60;
  return [m[4] === 'S' || m[4] === 'W' ? -deg : deg, step];
}

/** The first number in `s` and one unit of its last digit, or null. */
function parseNumber(s) {
  const m = /-?\d+(?:\.(\d+))?/.exec(s.replace('−', '-'));
  if (!m) return null;
  return [Number(m[0]), 10 ** -(m[1] ? m[1].length : 0)];
}

/**
 * Compares what the page shows for `key` with the expected SI value; returns a problem or
 * null. `shown` is {text, unit} as read from the page.
 */
function compare(key, shown) {
  const want = expect[key];
  if (!shown) return `${key} is not on the page`;
  const text = shown.text.trim();
  if (!text || text === '—') return `${key} shows no value`;
  if (key === 'latitude' || key === 'longitude') {
    const got = parseDm(text);
    if (!got) return `${key} shows "${text}", not degrees and decimal minutes`;
    const hemi = text.trim().slice(-1);
    if (key === 'latitude' ? !'NS'.includes(hemi) : !'EW'.includes(hemi)) return `${key} shows "${text}" with the wrong hemisphere letter`;
    const tol = got[1] + 1e-9;
    return Math.abs(got[0] - want) <= tol ? null : `${key} shows "${text}" (${got[0].toFixed(7)}°), expected ${want}° ±${tol.toExponential(1)}`;
  }
  const got = parseNumber(text);
  if (!got) return `${key} shows "${text}", not a number`;
  if (ANGLES.includes(key)) {
    const deg = ((((want * 180) / Math.PI) % 360) + 360) % 360;
    const diff = Math.abs(((got[0] - deg + 540) % 360) - 180);
    return diff <= got[1] + 1e-6 ? null : `${key} shows "${text}", expected ${deg.toFixed(1)}° ±${got[1]}`;
  }
  const convert = PER_UNIT[shown.unit];
  if (!convert) return `${key} is shown in "${shown.unit}", a unit this check does not know`;
  const value = convert(want);
  const tol = got[1] + 1e-6 * Math.max(1, Math.abs(value));
  return Math.abs(got[0] - value) <= tol
    ? null
    : `${key} shows ${text} ${shown.unit}, expected ${value.toFixed(4)} ${shown.unit} ±${got[1]} (${want} SI)`;
}

/** Runs in the page: each key's shown text, unit and arrival time. */
function readShown(keys) {
  const out = {};
  for (const k of keys) {
    const el = document.querySelector(`[data-value="${k}"]`);
    if (!el) continue;
    const unit = document.querySelector(`[data-unit="${k}"]`);
    const gauge = el.closest('.gauge');
    out[k] = {
      text: el.textContent,
      unit: unit ? unit.textContent.trim() : '',
      at: el.dataset.at || '',
      stale: Boolean(gauge && gauge.classList.contains('is-stale')),
    };
  }
  return out;
}

/** Polls the page until every key shows its expected value; returns the last problems. */
async function valuesMatch(tab, keys) {
  const deadline = Date.now() + VALUES_WAIT_MS;
  let problems = [];
  let shown = {};
  for (;;) {
    shown = await tab.evaluate(readShown, keys);
    problems = keys.map((k) => compare(k, shown[k])).filter(Boolean);
    if (!problems.length || Date.now() > deadline) break;
    await tab.waitForTimeout(250);
  }
  const stale = keys.filter((k) => shown[k] && shown[k].stale);
  return { problems, shown: Object.fromEntries(Object.entries(shown).map(([k, v]) => [k, `${v.text} ${v.unit}`.trim()])), stale };
}

/** Opens a tab on `theme` that records uncaught errors and what the page's CSP refused. */
async function openTab(browser, theme) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: theme === 'night' ? 'dark' : 'light', reducedMotion: 'reduce' });
  await context.addInitScript(([k, v]) => window.localStorage.setItem(k, v), ['d3kos-theme', theme]);
  if (engine) await context.addInitScript(([k, v]) => window.localStorage.setItem(k, v), ['d3kos-engine', engine]);
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.dispatchEvent(new CustomEvent('d3kos-csp', { detail: `${e.violatedDirective} refused ${e.blockedURI || 'inline'}` }));
    });
  });
  const tab = await context.newPage();
  const errors = [];
  tab.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  tab.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused/.test(m.text())) errors.push(`csp: ${m.text()}`);
  });
  const step = async (name, work) => {
    const problems = [];
    const extra = {};
    try {
      await work(problems, extra);
    } catch (e) {
      problems.push(e.message.split('\n')[0]);
    }
    problems.push(...errors.splice(0));
    report(`${theme}: ${name}`, problems, extra);
  };
  return { context, tab, step };
}

/** Opens the dashboard on the expected engine: through the switch when there are several. */
async function openDashboard(tab) {
  await tab.goto(new URL('/dashboard.html', base).href, { waitUntil: 'networkidle' });
  if (!engine) return;
  const button = tab.locator(`#engine-switch button[data-engine="${engine}"]`);
  await tab.waitForFunction(
    (id) => {
      const b = document.querySelector(`#engine-switch button[data-engine="${id}"]`);
      return (b && !document.getElementById('engine-switch').hidden) || document.getElementById('engine').dataset.engine === id;
    },
    engine,
    WAIT,
  );
  if (await button.isVisible()) {
    await button.click();
    const pressed = await button.getAttribute('aria-pressed');
    if (pressed !== 'true') throw new Error(`the ${engine} button is not pressed after a click (aria-pressed=${pressed})`);
  }
  await tab.locator(`#engine[data-engine="${engine}"]`).waitFor({ state: 'attached', ...WAIT });
}

/** The device's engine answer, read the way the page reads it (fields beside `success`, or in `data`). */
function engineCurrent(tab) {
  return tab.evaluate(async () => {
    const r = await fetch('/api/engine/current', { headers: { Accept: 'application/json' } });
    const j = await r.json().catch(() => null);
    if (!j || j.success !== true) return null;
    return j.data && typeof j.data === 'object' && Object.keys(j.data).length ? j.data : j;
  });
}

async function themeSteps(tab, step, theme) {
  await step('the dashboard shows the capture\'s engine values in the units it names', async (problems, extra) => {
    await openDashboard(tab);
    const r = await valuesMatch(tab, dashboardKeys);
    problems.push(...r.problems);
    extra.shown = r.shown;
    if (r.stale.length) extra.stale = r.stale;
    const link = await tab.locator('#dash-link').innerText();
    extra.link = link;
    if (/Connecting|Connection lost/.test(link)) problems.push(`the link line says "${link}" while values show`);
  });

  await step('the filled dashboard passes axe', async (problems) => {
    problems.push(...axeProblems(await violations(tab, true)));
    const styled = await tab.evaluate(() => document.querySelectorAll('main [style]').length);
    if (styled) problems.push(`${styled} elements carry a style attribute, which the device's CSP refuses`);
    await tab.screenshot({ path: path.join(outDir, `engine-dashboard-${theme}.png`), fullPage: true });
  });

  await step('the navigation page shows the capture\'s position, speed, course and heading', async (problems, extra) => {
    await tab.goto(new URL('/navigation.html', base).href, { waitUntil: 'networkidle' });
    const r = await valuesMatch(tab, navigationKeys);
    problems.push(...r.problems);
    extra.shown = r.shown;
    if (r.stale.length) extra.stale = r.stale;
    if (expect.latitude !== null && expect.latitude !== undefined) {
      const noFix = await tab.locator('#nav-no-fix').isVisible();
      if (noFix) problems.push('"No position" shows beside a position');
    }
    if (expect.headingMagnetic !== null && expect.headingMagnetic !== undefined) {
      const ref = await tab.evaluate(() => {
        const el = document.querySelector('[data-value="headingMagnetic"]');
        return el ? el.closest('.gauge').innerText : '';
      });
      if (!/magnetic/i.test(ref)) problems.push(`the magnetic heading is not labelled magnetic: ${JSON.stringify(ref)}`);
    }
  });

  await step('the filled navigation page passes axe', async (problems) => {
    problems.push(...axeProblems(await violations(tab, true)));
    await tab.screenshot({ path: path.join(outDir, `navigation-${theme}.png`), fullPage: true });
  });
}

/** Watches `key` for `ms`: when a new value arrived (on this side's clock) and what it showed. */
async function sample(tab, key, ms) {
  const arrivals = [];
  let last = null;
  const texts = new Set();
  let stale = false;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const s = (await tab.evaluate(readShown, [key]))[key];
    if (s) {
      if (s.at && s.at !== last) {
        if (last !== null) arrivals.push(Date.now());
        last = s.at;
      }
      texts.add(s.text);
      stale = s.stale;
    }
    await tab.waitForTimeout(100);
  }
  const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]).sort((a, b) => a - b);
  return { updates: arrivals.length, median: gaps.length ? gaps[Math.floor(gaps.length / 2)] : null, texts: [...texts], stale };
}

async function liveSteps(tab, step) {
  await step('the values arrive about once a second', async (problems, extra) => {
    await openDashboard(tab);
    const key = dashboardKeys.find((k) => k !== 'fuelLevel' && k !== 'batteryVoltage') || 'revolutions';
    await tab.waitForFunction((k) => (document.querySelector(`[data-value="${k}"]`) || {}).textContent !== '—', key, WAIT);
    const s = await sample(tab, key, 8000);
    extra.metric = key;
    extra.updates = s.updates;
    extra.median_ms = s.median;
    extra.values_changed = s.texts.length > 1;
    if (s.updates < 3 && s.stale) {
      extra.note = 'not determinable: the capture seems to have ended (the value is stale)';
      return;
    }
    if (s.updates < 4) problems.push(`${key} arrived ${s.updates} times in 8 s`);
    else if (s.median < 500 || s.median > 2000) problems.push(`${key} arrives every ${s.median} ms, not about every 1000 ms`);
  });

  await step('a trend sparkline is drawn once the device has history', async (problems, extra) => {
    const id = await tab.evaluate(() => document.getElementById('engine').dataset.engine);
    if (!id) throw new Error('no engine is shown');
    const metric = TREND_METRICS.find((m) => dashboardKeys.includes(m)) || 'revolutions';
    const url = `/api/engine/history?engine=${encodeURIComponent(id)}&metric=${metric}&minutes=60`;
    const deadline = Date.now() + HISTORY_WAIT_MS;
    let points = 0;
    for (;;) {
      points = await tab.evaluate(async (u) => {
        const r = await fetch(u, { headers: { Accept: 'application/json' } });
        const j = await r.json().catch(() => null);
        const d = j && j.data && Array.isArray(j.data.points) ? j.data : j;
        return d && Array.isArray(d.points) ? d.points.length : -1;
      }, url);
      if (points > 0 || Date.now() > deadline) break;
      await tab.waitForTimeout(2000);
    }
    extra.metric = metric;
    extra.points = points;
    if (points <= 0) throw new Error(`${url} gave no points in ${HISTORY_WAIT_MS / 1000} s`);
    // The page asks for history when it opens, then every minute.
    await openDashboard(tab);
    const spark = tab.locator(`[data-spark="${metric}"] svg.spark-svg`);
    await spark.waitFor({ state: 'visible', ...WAIT });
    const drawn = await spark.evaluate((svg) => ({
      shapes: svg.querySelectorAll('polyline, circle').length,
      role: svg.getAttribute('role'),
      label: svg.getAttribute('aria-label') || '',
      styled: svg.querySelectorAll('[style]').length + (svg.hasAttribute('style') ? 1 : 0),
      caption: (svg.parentElement.querySelector('.spark-caption') || {}).textContent || '',
    }));
    extra.caption = drawn.caption;
    if (!drawn.shapes) problems.push('the sparkline has no line');
    if (drawn.role !== 'img' || !drawn.label) problems.push(`the sparkline is not an image with a name: role=${drawn.role} label=${drawn.label}`);
    if (drawn.styled) problems.push('the sparkline carries style attributes');
    if (!/^Last hour: /.test(drawn.caption)) problems.push(`the trend caption says "${drawn.caption}"`);
  });

  await step('the alerts and levels of the device are shown in words', async (problems, extra) => {
    const deadline = Date.now() + 20000;
    let missing = [];
    for (;;) {
      const current = await engineCurrent(tab);
      if (!current) throw new Error('/api/engine/current did not answer');
      const id = await tab.evaluate(() => document.getElementById('engine').dataset.engine);
      const alerts = Array.isArray(current.alerts) ? current.alerts.filter((a) => a && LEVEL_WORDS[a.level] && a.level !== 'normal') : [];
      const eng = Array.isArray(current.engines) ? current.engines.find((e) => e && e.id === id) : null;
      const metrics = eng && Array.isArray(eng.metrics) ? eng.metrics.filter((m) => m && LEVEL_WORDS[m.level]) : [];
      const page = await tab.evaluate(() => ({
        role: document.getElementById('eng-alerts').getAttribute('role'),
        alerts: [...document.querySelectorAll('#eng-alerts li')].map((li) => li.innerText),
        levels: Object.fromEntries([...document.querySelectorAll('[data-level-of]')].map((e) => [e.dataset.levelOf, e.textContent])),
      }));
      missing = [];
      if (page.role !== 'alert') missing.push('the alert region has no role="alert"');
      for (const a of alerts) {
        const word = LEVEL_WORDS[a.level].toUpperCase();
        const message = typeof a.message === 'string' ? a.message.trim() : '';
        if (!page.alerts.some((t) => t.includes(word) && t.includes(message))) missing.push(`the ${a.level} alert on ${a.engine} ${a.metric} is not shown with its level in words`);
      }
      if (!alerts.length && page.alerts.length) missing.push(`alerts shown that the device does not report: ${JSON.stringify(page.alerts)}`);
      for (const m of metrics) {
        if (!(m.metric in page.levels)) continue;
        if (!page.levels[m.metric].startsWith(LEVEL_WORDS[m.level])) missing.push(`${m.metric} shows level "${page.levels[m.metric]}", the device says ${m.level}`);
      }
      extra.alerts = page.alerts;
      extra.levels = page.levels;
      if (!missing.length || Date.now() > deadline) break;
      await tab.waitForTimeout(500);
    }
    problems.push(...missing);
  });
}

if (unknown.length) {
  report('the expected values name only known keys', [`unknown keys in ${expectPath}: ${unknown.join(', ')}`]);
}

const { browser, close } = await launch();
try {
  for (const theme of ['day', 'night']) {
    const { context, tab, step } = await openTab(browser, theme);
    await themeSteps(tab, step, theme);
    if (theme === 'day') await liveSteps(tab, step);
    await context.close();
  }
} finally {
  await close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
