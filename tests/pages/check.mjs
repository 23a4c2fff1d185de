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
import path from 'node:path';
import { launch, violations } from './lib.mjs';

const PAGES = [
  { path: '/', name: 'index' },
  { path: '/settings.html', name: 'settings' },
  { path: '/dashboard.html', name: 'dashboard' },
  { path: '/boatlog.html', name: 'boatlog' },
  { path: '/navigation.html', name: 'navigation' },
  { path: '/settings-healing.html', name: 'settings-healing' },
  { path: '/onboarding', name: 'onboarding' },
];
const THEMES = ['day', 'night'];

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
    result.violations.push(...(await violations(tab, underCsp)));
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

let browser;
let close;
try {
  ({ browser, close } = await launch());
} catch (e) {
  console.error(`could not start Chromium: ${e.message}`);
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
  await close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
