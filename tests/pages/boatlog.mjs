// Drives the boat log page and the Exports section of the settings page of a real d3kosd
// in headless Chromium, as an owner would: sign in, add an entry whose text looks like
// HTML and mixes scripts, see it listed exactly as typed, filter by kind and date, delete
// it through the confirmation, page back through older entries, then queue a boat log
// CSV export to the device and download it, and follow an upload that fails through its
// retries to Retry and Delete. Both pages, filled, must pass axe-core (WCAG 2.1 A and AA)
// and the helm screen's own rules in both themes.
//
// usage: node boatlog.mjs BASE_URL SETUP_CODE OUT_DIR
//
// The daemon's configuration names an upload `office` that cannot be reached, with
// `export.retry_secs = [1, 8]`. Prints one JSON line per step and "N passed, M failed";
// exits 1 when a step failed.

import path from 'node:path';
import { launch, violations } from './lib.mjs';

const [baseArg, code, outDir] = process.argv.slice(2);
if (!baseArg || !code || !outDir) {
  console.error('usage: node boatlog.mjs BASE_URL SETUP_CODE OUT_DIR');
  process.exit(2);
}
const base = new URL(baseArg);
const WAIT = { timeout: 60000 };
const USER = 'skipper';
const PASSWORD = 'harbour lights';
// Markup, quotes, an emoji, right-to-left Hebrew, a second line and a script tag: the
// page must show all of it as text.
const AWKWARD = '<b>bold</b> "quotes", ⚓ and שלום\nsecond line <script>window.__injected = 1</script> & <img src=x>';

let passed = 0;
let failed = 0;
function report(step, problems) {
  if (problems.length) failed += 1;
  else passed += 1;
  console.log(JSON.stringify({ step, ok: problems.length === 0, problems }));
}

function axeProblems(found) {
  return found.map((x) => `${x.id}: ${x.help} ${JSON.stringify(x.targets || [])}`);
}

/** A tenth of a second of silence as a WAV file, as bytes for fetch. */
function silenceWav() {
  const rate = 8000;
  const n = rate / 10;
  const buf = new ArrayBuffer(44 + n);
  const v = new DataView(buf);
  const ascii = (at, s) => [...s].forEach((c, i) => v.setUint8(at + i, c.charCodeAt(0)));
  ascii(0, 'RIFF');
  v.setUint32(4, 36 + n, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 1, true); // mono
  v.setUint32(24, rate, true);
  v.setUint32(28, rate, true);
  v.setUint16(32, 1, true);
  v.setUint16(34, 8, true);
  ascii(36, 'data');
  v.setUint32(40, n, true);
  for (let i = 0; i < n; i += 1) v.setUint8(44 + i, 128);
  return [...new Uint8Array(buf)];
}

/** Opens a tab on `theme` that records uncaught errors and what the page's CSP refused. */
async function openTab(browser, theme) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: theme === 'night' ? 'dark' : 'light', reducedMotion: 'reduce', acceptDownloads: true });
  await context.addInitScript(([k, v]) => window.localStorage.setItem(k, v), ['d3kos-theme', theme]);
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
    try {
      await work(problems);
    } catch (e) {
      problems.push(e.message.split('\n')[0]);
    }
    problems.push(...errors.splice(0));
    report(`${theme}: ${name}`, problems);
  };
  return { context, tab, step };
}

/** Creates the owner account on a fresh device, or signs in on the settings page. */
async function signIn(tab) {
  await tab.goto(new URL('/settings.html', base).href, { waitUntil: 'networkidle' });
  if (await tab.locator('#setup-form').isVisible()) {
    await tab.fill('#setup-code', code);
    await tab.fill('#setup-username', USER);
    await tab.fill('#setup-password', PASSWORD);
    await tab.fill('#setup-password2', PASSWORD);
    await tab.click('#setup-form button[type="submit"]');
  } else {
    await tab.fill('#signin-username', USER);
    await tab.fill('#signin-password', PASSWORD);
    await tab.click('#signin-form button[type="submit"]');
  }
  await tab.locator('#export-box').waitFor({ state: 'visible', ...WAIT });
}

/** Calls the device's API from the page, with its session; returns status and JSON. */
function call(tab, method, url, body) {
  return tab.evaluate(
    async ([m, u, b]) => {
      const init = { method: m, headers: { Accept: 'application/json' } };
      if (b !== null) {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(b);
      }
      const r = await fetch(u, init);
      return { status: r.status, json: await r.json().catch(() => null) };
    },
    [method, url, body === undefined ? null : body],
  );
}

/** The kinds shown, one per listed entry. */
function shownKinds(tab) {
  return tab.evaluate(() => [...document.querySelectorAll('#log-days .entry .kind')].map((k) => k.textContent));
}

/** Waits until the list has loaded: the page marks it busy from a request to its answer. */
async function listSettled(tab) {
  await tab.locator('#log-days[aria-busy="false"]').waitFor({ state: 'attached', ...WAIT });
}

async function filterBy(tab, kind, from = '', to = '') {
  await tab.selectOption('#filter-kind', kind);
  await tab.fill('#filter-from', from);
  await tab.fill('#filter-to', to);
  await tab.click('#filter-form button[type="submit"]');
  await listSettled(tab);
}

/** The id of the listed entry whose text is exactly `text`, or null. */
function entryWithText(tab, text) {
  return tab.evaluate((t) => {
    const hit = [...document.querySelectorAll('#log-days .entry')].find((li) => li.querySelector('.entry-text').textContent === t);
    return hit ? hit.dataset.id : null;
  }, text);
}

async function boatlogSteps(tab, step, theme) {
  let awkwardId = null;

  await step('the boat log page offers the owner the form', async (problems) => {
    await tab.goto(new URL('/boatlog.html', base).href, { waitUntil: 'networkidle' });
    await tab.locator('#add-form').waitFor({ state: 'visible', ...WAIT });
    if (await tab.locator('#add-signed-out').isVisible()) problems.push('the signed-out note shows to the owner');
  });

  await step('an entry of markup, quotes, emoji and Hebrew is listed exactly as typed', async (problems) => {
    await tab.fill('#add-text', AWKWARD);
    await tab.click('#add-form button[type="submit"]');
    await tab.locator('#add-note', { hasText: 'Entry added' }).waitFor(WAIT);
    await tab.waitForFunction((t) => [...document.querySelectorAll('#log-days .entry-text')].some((p) => p.textContent === t), AWKWARD, WAIT);
    awkwardId = await entryWithText(tab, AWKWARD);
    const shown = await tab.evaluate((id) => {
      const li = document.querySelector(`#log-days .entry[data-id="${id}"]`);
      const p = li.querySelector('.entry-text');
      return {
        elements: [...p.querySelectorAll('*')].map((e) => e.tagName),
        injected: window.__injected === 1,
        dir: p.dir,
        lines: p.getClientRects().length ? p.innerText.split('\n').length : 0,
        heading: li.closest('section').querySelector('h3').textContent,
        firstHeading: document.querySelector('#log-days h3').textContent,
        kind: li.querySelector('.kind').textContent,
        author: li.querySelector('.entry-meta').textContent,
        text: (document.querySelector('#add-text') || {}).value,
      };
    }, awkwardId);
    if (shown.elements.length) problems.push(`the text became markup: ${shown.elements.join(', ')}`);
    if (shown.injected) problems.push('the script in the text ran');
    if (shown.dir !== 'auto') problems.push(`the text's direction is "${shown.dir}", not auto`);
    if (shown.lines !== 2) problems.push(`the text shows on ${shown.lines} lines, not 2`);
    if (!/^(Sun|Mon|Tues|Wednes|Thurs|Fri|Satur)day \d{1,2} [A-Z][a-z]+ \d{4}$/.test(shown.heading)) problems.push(`the day heading is "${shown.heading}"`);
    if (shown.heading !== shown.firstHeading) problems.push(`the new entry is under "${shown.heading}", not the newest day "${shown.firstHeading}"`);
    if (shown.kind !== 'Typed') problems.push(`kind shown as ${shown.kind}`);
    if (!shown.author.includes(`by ${USER}`)) problems.push(`author not shown: ${shown.author}`);
    if (shown.text !== '') problems.push('the form kept the text after adding it');
    const first = await tab.evaluate(() => document.querySelector('#log-days .entry').dataset.id);
    if (first !== awkwardId) problems.push(`the newest entry listed first is ${first}, not ${awkwardId}`);
    const api = await call(tab, 'GET', `/api/boatlog/${awkwardId}`);
    if (api.json?.data?.text !== AWKWARD) problems.push(`stored as ${JSON.stringify(api.json?.data?.text)}`);
  });

  await step('a spoken entry with its recording and an entry by d3kOS are listed', async (problems) => {
    const voice = await call(tab, 'POST', '/api/boatlog', { text: `Voice note, ${theme} watch`, kind: 'voice' });
    const id = voice.json?.data?.id;
    if (voice.status !== 200 || !id) throw new Error(`the voice entry was refused: ${JSON.stringify(voice)}`);
    const put = await tab.evaluate(
      async ([u, bytes]) => (await fetch(u, { method: 'PUT', headers: { 'Content-Type': 'audio/wav' }, body: new Uint8Array(bytes) })).status,
      [`/api/boatlog/${id}/audio`, silenceWav()],
    );
    if (put !== 200) problems.push(`the recording was refused: HTTP ${put}`);
    const backup = await tab.evaluate(async () => (await fetch('/api/backup/create', { method: 'POST' })).status);
    if (backup !== 200) problems.push(`the backup that writes an entry by d3kOS failed: HTTP ${backup}`);
    await tab.reload({ waitUntil: 'networkidle' });
    await listSettled(tab);
    const audio = tab.locator(`#log-days .entry[data-id="${id}"] audio`);
    await audio.waitFor({ state: 'visible', ...WAIT });
    const a = await audio.evaluate(async (el) => {
      const r = await fetch(el.src);
      return { controls: el.controls, label: el.getAttribute('aria-label'), status: r.status, type: r.headers.get('content-type') };
    });
    if (!a.controls) problems.push('the player has no controls');
    if (!a.label || !a.label.startsWith('Recording of the entry of')) problems.push(`the player is labelled "${a.label}"`);
    if (a.status !== 200 || a.type !== 'audio/wav') problems.push(`the recording answers HTTP ${a.status} ${a.type}`);
    const kinds = await shownKinds(tab);
    for (const k of ['Typed', 'Spoken', 'Written by d3kOS']) if (!kinds.includes(k)) problems.push(`no entry shown as ${k}: ${kinds}`);
  });

  await step('the filter shows one kind, or a date range, and the CSV link follows the dates', async (problems) => {
    for (const [kind, label] of [
      ['voice', 'Spoken'],
      ['text', 'Typed'],
      ['auto', 'Written by d3kOS'],
    ]) {
      await filterBy(tab, kind);
      const kinds = await shownKinds(tab);
      if (!kinds.length || kinds.some((k) => k !== label)) problems.push(`filtered by ${kind}, the list shows ${JSON.stringify(kinds)}`);
      const hasAwkward = (await entryWithText(tab, AWKWARD)) !== null;
      if (hasAwkward !== (kind === 'text')) problems.push(`filtered by ${kind}, the typed entry is ${hasAwkward ? '' : 'not '}shown`);
      if (!tab.url().includes(`kind=${kind}`)) problems.push(`the address does not keep the filter: ${tab.url()}`);
    }
    await filterBy(tab, '', '2001-01-01', '2001-01-02');
    const status = await tab.locator('#log-status').innerText();
    if (!status.includes('No entries match')) problems.push(`an empty range says "${status}"`);
    const csv = await tab.locator('#log-csv').getAttribute('href');
    if (csv !== '/api/boatlog/export.csv?from=2001-01-01&to=2001-01-02') problems.push(`the CSV link is ${csv}`);
    await filterBy(tab, '', '2001-01-02', '2001-01-01');
    const err = await tab.locator('#log-error').innerText();
    if (!err.includes('From date comes after')) problems.push(`a reversed range says "${err}"`);
    await tab.click('#filter-clear');
    await listSettled(tab);
    if ((await tab.locator('#log-csv').getAttribute('href')) !== '/api/boatlog/export.csv') problems.push('Show all leaves dates on the CSV link');
    if ((await shownKinds(tab)).length < 3) problems.push('Show all does not show every entry');
  });

  await step('the boat log with entries passes axe', async (problems) => {
    problems.push(...axeProblems(await violations(tab, true)));
    await tab.screenshot({ path: path.join(outDir, `boatlog-owner-${theme}.png`), fullPage: true });
  });

  await step('the entry is deleted through the confirmation, not before', async (problems) => {
    const del = tab.locator(`#log-days .entry[data-id="${awkwardId}"] button`, { hasText: 'Delete' });
    await del.click();
    const dialog = tab.locator('#log-confirm');
    await dialog.waitFor({ state: 'visible', ...WAIT });
    const quote = await tab.locator('#log-confirm-quote').evaluate((q) => q.textContent);
    if (quote !== AWKWARD) problems.push(`the confirmation quotes ${JSON.stringify(quote)}`);
    const focused = await tab.evaluate(() => document.activeElement && document.activeElement.id);
    if (focused !== 'log-confirm-no') problems.push(`focus is on ${focused}, not "Keep it"`);
    problems.push(...axeProblems(await violations(tab, true)));
    await tab.screenshot({ path: path.join(outDir, `boatlog-confirm-${theme}.png`) });
    await tab.click('#log-confirm-no');
    await dialog.waitFor({ state: 'hidden', ...WAIT });
    if ((await entryWithText(tab, AWKWARD)) === null) problems.push('"Keep it" deleted the entry');
    const back = await del.evaluate((b) => b === document.activeElement);
    if (!back) problems.push('focus did not return to the Delete button');
    await del.click();
    await dialog.waitFor({ state: 'visible', ...WAIT });
    await tab.click('#log-confirm-yes');
    await tab.locator('#log-note', { hasText: 'was deleted' }).waitFor(WAIT);
    if ((await entryWithText(tab, AWKWARD)) !== null) problems.push('the deleted entry is still listed');
    const gone = await call(tab, 'GET', `/api/boatlog/${awkwardId}`);
    if (gone.status !== 404) problems.push(`the deleted entry answers HTTP ${gone.status}`);
  });

  await step('the CSV link downloads the log', async (problems) => {
    const href = await tab.locator('#log-csv').getAttribute('href');
    const [download] = await Promise.all([tab.waitForEvent('download', WAIT), tab.click('#log-csv')]);
    const name = download.suggestedFilename();
    if (!/^d3kos-boatlog-\d{4}-\d{2}-\d{2}\.csv$/.test(name)) problems.push(`the file is named ${name}`);
    const got = await tab.evaluate(async (u) => {
      const r = await fetch(u);
      return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
    }, href);
    if (got.status !== 200 || !got.type.startsWith('text/csv')) problems.push(`HTTP ${got.status} ${got.type}`);
    if (!got.body.includes(`Voice note, ${theme} watch`)) problems.push('the CSV lacks the voice entry');
    if (got.body.includes('שלום')) problems.push('the CSV still holds the deleted entry');
  });
}

async function exportSteps(tab, step, theme) {
  await step('a boat log CSV export to the device finishes with a Download link', async (problems) => {
    await tab.goto(new URL('/settings.html', base).href, { waitUntil: 'networkidle' });
    await tab.locator('#export-box').waitFor({ state: 'visible', ...WAIT });
    const options = await tab.locator('#ex-dest option').evaluateAll((os) => os.map((o) => o.value));
    for (const want of ['device', 'upload:office']) if (!options.includes(want)) problems.push(`destinations offered: ${options}`);
    const links = () => tab.locator('#ex-finished a', { hasText: 'Download' }).count();
    const before = await links();
    await tab.selectOption('#ex-dest', 'device');
    await tab.click('#ex-form button[type="submit"]');
    await tab.locator('#export-note', { hasText: 'is finished' }).waitFor(WAIT);
    const id = /Export (\d+) is finished/.exec(await tab.locator('#export-note').innerText())[1];
    await tab.waitForFunction((n) => document.querySelectorAll('#ex-finished a').length === n, before + 1, WAIT);
    const row = tab.locator('#ex-finished tr', { has: tab.locator(`a[href="/api/export/${id}/download"]`) });
    const shown = await row.innerText();
    for (const want of [`-job${id}.csv`, 'This device', 'Boat log (CSV)']) if (!shown.includes(want)) problems.push(`the finished row lacks "${want}": ${shown}`);
    const got = await tab.evaluate(async (u) => {
      const r = await fetch(u);
      return { status: r.status, body: await r.text() };
    }, `/api/export/${id}/download`);
    if (got.status !== 200) problems.push(`the download answers HTTP ${got.status}`);
    if (!got.body.includes(`Voice note, ${theme} watch`)) problems.push('the export lacks the voice entry');
  });

  let failedId = null;
  await step('an upload that cannot be delivered waits for its retry, then fails', async (problems) => {
    await tab.selectOption('#ex-dest', 'upload:office');
    await tab.click('#ex-form button[type="submit"]');
    await tab.locator('#export-note', { hasText: 'queued' }).waitFor(WAIT);
    failedId = /Export (\d+) queued/.exec(await tab.locator('#export-note').innerText())[1];
    const pending = tab.locator('#ex-pending tr', { hasText: 'Upload: office' });
    await pending.waitFor({ state: 'visible', ...WAIT });
    await tab.locator('#ex-pending tr', { hasText: 'Last try:' }).waitFor(WAIT);
    const row = await pending.innerText();
    if (!/Now|in \d+ s/.test(row)) problems.push(`the waiting export does not say when it runs: ${row}`);
    await tab.locator('#ex-failed tr', { hasText: 'Upload: office' }).waitFor(WAIT);
    await tab.locator('#export-error', { hasText: `Export ${failedId} failed` }).waitFor(WAIT);
    const failedRow = await tab.locator('#ex-failed tr', { hasText: 'Upload: office' }).innerText();
    if (!failedRow.includes('office')) problems.push(`the failed row: ${failedRow}`);
    if (await tab.locator('#ex-pending-box').isVisible()) problems.push('the failed export is still listed as waiting');
  });

  await step('the settings page with the queue filled passes axe', async (problems) => {
    problems.push(...axeProblems(await violations(tab, true)));
    await tab.screenshot({ path: path.join(outDir, `exports-${theme}.png`), fullPage: true });
  });

  await step('a failed export can be retried and deleted', async (problems) => {
    await tab.locator(`#ex-failed button[aria-label="Retry export ${failedId}"]`).click();
    await tab.locator('#export-note', { hasText: 'runs again' }).waitFor(WAIT);
    await tab.locator(`#ex-pending button[aria-label="Cancel export ${failedId}"]`).waitFor(WAIT);
    await tab.locator(`#ex-failed button[aria-label="Delete export ${failedId}"]`).waitFor(WAIT);
    await tab.locator(`#ex-failed button[aria-label="Delete export ${failedId}"]`).click();
    await tab.locator('#export-note', { hasText: `Export ${failedId} was deleted` }).waitFor(WAIT);
    await tab.locator('#ex-failed-box').waitFor({ state: 'hidden', ...WAIT });
    const gone = await call(tab, 'GET', '/api/export/status');
    const ids = ['pending', 'failed', 'finished'].flatMap((k) => gone.json.data[k].map((j) => String(j.id)));
    if (ids.includes(failedId)) problems.push(`export ${failedId} is still queued`);
  });

  await step('a queue in every state, with missing values, shows no raw value and passes axe', async (problems) => {
    const now = Date.now();
    const job = (id, state, extra) => ({
      id,
      created: now - 60000,
      what: { type: 'boatlog_csv', from: null, to: now },
      destination: 'device',
      state,
      attempts: 1,
      next_attempt: null,
      started: null,
      finished: null,
      bytes: null,
      file: null,
      error: null,
      progress_bytes: null,
      duration_ms: null,
      download: null,
      ...extra,
    });
    const status = {
      success: true,
      data: {
        running: job(901, 'running', { what: { type: 'backup', id: 'd3kos_backup_20261129_101500' }, destination: 'usb:2C4F-1A0B', started: now - 5000, progress_bytes: 123456 }),
        pending: [
          job(902, 'pending', { destination: 'upload:office', next_attempt: now + 300000, error: '<b>Upload office</b>: connection refused.' }),
          job(903, 'pending', { attempts: 0 }),
        ],
        failed: [job(904, 'failed', { what: { type: 'boatlog_csv', from: now - 86400000, to: now }, attempts: null, error: null })],
        finished: [
          job(905, 'done', { finished: now - 1000, bytes: 2048, file: 'd3kos-boatlog-2026-11-29-job905.csv', duration_ms: 1500, download: '/api/export/905/download' }),
          job(906, 'done', { destination: 'upload:office', what: { type: 'mystery' } }),
        ],
        retry_secs: [1, 8],
      },
    };
    await tab.route('**/api/export/status', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(status) }));
    try {
      await tab.reload({ waitUntil: 'networkidle' });
      await tab.locator('#ex-running-box').waitFor({ state: 'visible', ...WAIT });
      const running = await tab.locator('#ex-running-text').innerText();
      if (!running.includes('123 KB written so far') || !running.includes('USB drive 2C4F-1A0B')) problems.push(`running shown as: ${running}`);
      const markup = await tab.evaluate(() => document.querySelectorAll('#export-box tbody b').length);
      if (markup) problems.push('an error message became markup');
      const counts = await tab.evaluate(() => ['#ex-pending tr', '#ex-failed tr', '#ex-finished tr'].map((s) => document.querySelectorAll(s).length));
      if (JSON.stringify(counts) !== '[2,1,2]') problems.push(`rows shown: ${counts}`);
      problems.push(...axeProblems(await violations(tab, true)));
      await tab.screenshot({ path: path.join(outDir, `exports-all-states-${theme}.png`), fullPage: true });
    } finally {
      await tab.unroute('**/api/export/status');
    }
  });
}

const { browser, close } = await launch();
try {
  for (const theme of ['day', 'night']) {
    const { context, tab, step } = await openTab(browser, theme);
    await step('sign in as the owner', () => signIn(tab));
    await boatlogSteps(tab, step, theme);
    await exportSteps(tab, step, theme);
    await context.close();
  }

  const { context, tab, step } = await openTab(browser, 'day');
  await step('older entries load a page at a time, none twice', async (problems) => {
    await signIn(tab);
    for (let i = 1; i <= 60; i += 1) {
      const r = await call(tab, 'POST', '/api/boatlog', { text: `Watch report ${i}` });
      if (r.status !== 200) throw new Error(`entry ${i} was refused: HTTP ${r.status}`);
    }
    const all = (await call(tab, 'GET', '/api/boatlog?limit=500')).json.data.entries.length;
    await tab.goto(new URL('/boatlog.html', base).href, { waitUntil: 'networkidle' });
    await listSettled(tab);
    const count = () => tab.locator('#log-days .entry').count();
    if ((await count()) !== 50) problems.push(`the first page shows ${await count()} entries, not 50`);
    const older = tab.locator('#log-older');
    await older.click();
    await tab.waitForFunction((n) => document.querySelectorAll('#log-days .entry').length === n, all, WAIT);
    const listed = await tab.evaluate(() => [...document.querySelectorAll('#log-days .entry')].map((li) => [li.dataset.id, li.querySelector('time').dateTime]));
    if (new Set(listed.map(([id]) => id)).size !== listed.length) problems.push('an entry is listed twice');
    if (listed.some(([, at], i) => i > 0 && at > listed[i - 1][1])) problems.push('the entries are not newest first');
    if (await older.isVisible()) problems.push('"Load older entries" still shows after the last page');
    const focus = await tab.evaluate(() => document.activeElement && document.activeElement.classList.contains('entry'));
    if (!focus) problems.push('focus did not move to the first older entry');
    const days = await tab.evaluate(() => [...document.querySelectorAll('#log-days section')].map((s) => s.dataset.day));
    if (new Set(days).size !== days.length) problems.push(`a day is shown twice: ${days}`);
    problems.push(...axeProblems(await violations(tab, true)));
  });
  await context.close();
} finally {
  await close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
