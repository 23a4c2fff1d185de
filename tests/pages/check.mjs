// Checks the d3kOS web pages in headless Chromium: every page in the day and the night
// theme must have no axe-core violation of WCAG 2.0/2.1 A and AA.
//
// usage: node check.mjs BASE_URL OUT_DIR
//
// Prints one JSON line per page and theme, then "N passed, M failed"; exits 1 when any
// failed. Besides axe's rules, two of the helm screen's own count as violations:
//   d3kos-target-size  a visible control smaller than 48×48 CSS px (gloved, wet fingers);
//   d3kos-raw-value    the text "null", "undefined" or "NaN" shown to the person.
// Console errors and failed requests are reported, not failed: a page whose API calls
// fail must still pass.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_PATH = require.resolve('axe-core/axe.min.js');

const PAGES = [
  { path: '/', name: 'index' },
  { path: '/settings.html', name: 'settings' },
  { path: '/dashboard.html', name: 'dashboard' },
];
const THEMES = ['day', 'night'];
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const MIN_TARGET = 48;

function usage() {
  console.error('usage: node check.mjs BASE_URL OUT_DIR');
  process.exit(2);
}

const [baseArg, outArg] = process.argv.slice(2);
if (!baseArg || !outArg) usage();
let base;
try {
  base = new URL(baseArg);
} catch {
  usage();
}
const outDir = path.resolve(outArg);
fs.mkdirSync(outDir, { recursive: true });

/** Runs in the page: visible controls smaller than the minimum touch target. */
function smallTargets(min) {
  const found = [];
  const sel = 'a[href], button, input:not([type="hidden"]), select, textarea, [role="button"], [tabindex]:not([tabindex="-1"])';
  for (const el of document.querySelectorAll(sel)) {
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.display === 'none') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue; // not rendered, or the skip link off screen
    if (r.bottom < 0 || r.right < 0) continue;
    if (r.width < min - 0.5 || r.height < min - 0.5) {
      const id = el.id ? `#${el.id}` : '';
      found.push(`${el.tagName.toLowerCase()}${id} "${(el.textContent || el.value || '').trim().slice(0, 40)}" ${Math.round(r.width)}×${Math.round(r.height)}`);
    }
  }
  return found;
}

/** Runs in the page: the words a raw null or NaN leaves behind in visible text. */
function rawValues() {
  const text = document.body.innerText || '';
  const hits = text.match(/\b(null|undefined|NaN)\b/g);
  return hits ? [...new Set(hits)] : [];
}

/**
 * Loads axe-core into the page. A page under `default-src 'self'` refuses the inline
 * <script> that addScriptTag makes, so there axe is evaluated through the DevTools
 * protocol, which the page's policy does not govern.
 */
async function injectAxe(tab, underCsp) {
  if (!underCsp) await tab.addScriptTag({ path: AXE_PATH });
  if (!(await tab.evaluate(() => typeof window.axe === 'object'))) {
    await tab.evaluate(fs.readFileSync(AXE_PATH, 'utf8'));
  }
}

async function checkOne(browser, page, theme) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    colorScheme: theme === 'night' ? 'dark' : 'light',
    reducedMotion: 'reduce',
  });
  // Anything the page's Content-Security-Policy refuses (inline script or style, another
  // origin) is a fault of the page: the device sends `default-src 'self'`.
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} refused ${e.blockedURI || 'inline'} (${e.sourceFile || 'page'}:${e.lineNumber})`);
    });
  });
  await context.addInitScript(
    ([key, value]) => {
      try {
        window.localStorage.setItem(key, value);
      } catch {
        // storage refused: the page follows colorScheme above
      }
    },
    ['d3kos-theme', theme],
  );
  const tab = await context.newPage();
  const consoleErrors = [];
  const failedRequests = [];
  tab.on('console', (m) => {
    if (m.type() === 'error') {
      const where = m.location() && m.location().url;
      consoleErrors.push(where ? `${m.text()} [${where}]` : m.text());
    }
  });
  tab.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`));
  tab.on('requestfailed', (r) => failedRequests.push(`${r.method()} ${r.url()} ${r.failure()?.errorText ?? 'failed'}`));
  tab.on('response', (r) => {
    if (r.status() >= 400 && new URL(r.url()).origin === base.origin) {
      failedRequests.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`);
    }
  });

  const url = new URL(page.path, base).href;
  const result = { page: page.path, theme, violations: [], screenshot: null };
  try {
    const response = await tab.goto(url, { waitUntil: 'networkidle', timeout: 30000 });
    const underCsp = Boolean(response && response.headers()['content-security-policy']);
    const applied = await tab.evaluate(() => document.documentElement.dataset.theme || null);
    if (applied !== theme) {
      result.violations.push({ id: 'd3kos-theme', impact: 'serious', help: `Theme "${theme}" was not applied (data-theme=${applied})`, nodes: 1 });
    }
    const csp = await tab.evaluate(() => window.__cspViolations.slice());
    if (csp.length) {
      result.violations.push({ id: 'd3kos-csp', impact: 'serious', help: 'The Content-Security-Policy refused part of the page', nodes: csp.length, targets: csp.slice(0, 5) });
    }
    await injectAxe(tab, underCsp);
    const axe = await tab.evaluate(
      (tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] }),
      TAGS,
    );
    for (const v of axe.violations) {
      result.violations.push({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length, targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) });
    }
    const small = await tab.evaluate(smallTargets, MIN_TARGET);
    if (small.length) {
      result.violations.push({ id: 'd3kos-target-size', impact: 'serious', help: `Touch targets must be at least ${MIN_TARGET}×${MIN_TARGET} CSS px`, nodes: small.length, targets: small.slice(0, 5) });
    }
    const raw = await tab.evaluate(rawValues);
    if (raw.length) {
      result.violations.push({ id: 'd3kos-raw-value', impact: 'serious', help: `Page shows raw values: ${raw.join(', ')}`, nodes: raw.length });
    }
    const shot = path.join(outDir, `${page.name}-${theme}.png`);
    await tab.screenshot({ path: shot, fullPage: true });
    result.screenshot = shot;
  } catch (e) {
    result.violations.push({ id: 'd3kos-load', impact: 'critical', help: `The page could not be checked: ${e.message.split('\n')[0]}`, nodes: 1 });
  }
  if (consoleErrors.length) result.console_errors = consoleErrors;
  if (failedRequests.length) result.failed_requests = failedRequests;
  await context.close();
  return result;
}

// chromium.launch gives Chromium a fresh temporary profile of its own, removed on close;
// HOME points at a fresh directory too, so nothing is read from or left in the real home.
// Each page and theme gets its own browser context: no storage carries over.
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'd3kos-pages-'));
let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    env: { ...process.env, HOME: userDataDir },
  });
} catch (e) {
  console.error(`could not start Chromium: ${e.message}`);
  fs.rmSync(userDataDir, { recursive: true, force: true });
  process.exit(2);
}

let passed = 0;
let failed = 0;
try {
  for (const page of PAGES) {
    for (const theme of THEMES) {
      const r = await checkOne(browser, page, theme);
      if (r.violations.length === 0) passed += 1;
      else failed += 1;
      console.log(JSON.stringify(r));
    }
  }
} finally {
  await browser.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
