// What the page checks share: Chromium started the same way, axe-core loaded under the
// device's Content-Security-Policy, and the helm screen's own rules.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_PATH = require.resolve('axe-core/axe.min.js');

export const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
export const MIN_TARGET = 48;

/** Runs in the page: visible controls smaller than the minimum touch target. */
export function smallTargets(min) {
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
export function rawValues() {
  const text = document.body.innerText || '';
  const hits = text.match(/\b(null|undefined|NaN)\b/g);
  return hits ? [...new Set(hits)] : [];
}

/**
 * Loads axe-core into the page. A page under `default-src 'self'` refuses the inline
 * <script> that addScriptTag makes, so there axe is evaluated through the DevTools
 * protocol, which the page's policy does not govern.
 */
export async function injectAxe(tab, underCsp) {
  if (!underCsp) await tab.addScriptTag({ path: AXE_PATH });
  if (!(await tab.evaluate(() => typeof window.axe === 'object'))) {
    await tab.evaluate(fs.readFileSync(AXE_PATH, 'utf8'));
  }
}

/**
 * Every violation on the page as it is now: axe-core's WCAG A/AA rules, touch targets
 * under 48 px and raw null/NaN text.
 */
export async function violations(tab, underCsp) {
  const found = [];
  await injectAxe(tab, underCsp);
  const axe = await tab.evaluate(
    (tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] }),
    TAGS,
  );
  for (const v of axe.violations) {
    found.push({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length, targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')), why: v.nodes.slice(0, 2).map((n) => n.failureSummary) });
  }
  const small = await tab.evaluate(smallTargets, MIN_TARGET);
  if (small.length) {
    found.push({ id: 'd3kos-target-size', impact: 'serious', help: `Touch targets must be at least ${MIN_TARGET}×${MIN_TARGET} CSS px`, nodes: small.length, targets: small.slice(0, 5) });
  }
  const raw = await tab.evaluate(rawValues);
  if (raw.length) {
    found.push({ id: 'd3kos-raw-value', impact: 'serious', help: `Page shows raw values: ${raw.join(', ')}`, nodes: raw.length });
  }
  return found;
}

/**
 * Debian's Chromium, headless, with a fresh temporary profile and HOME: nothing is read
 * from or left in the real home. Returns the browser and a function that closes it.
 */
export async function launch() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'd3kos-pages-'));
  const browser = await chromium.launch({
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
  return {
    browser,
    close: async () => {
      await browser.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * One JSON line per step and the count at the end: `step(name, problems)` records a step,
 * `finish()` prints "N passed, M failed" and exits 1 when any failed.
 */
export function steps() {
  let passed = 0;
  let failed = 0;
  return {
    step(name, problems) {
      if (problems.length) failed += 1;
      else passed += 1;
      console.log(JSON.stringify({ step: name, ok: problems.length === 0, problems }));
    },
    finish() {
      console.log(`${passed} passed, ${failed} failed`);
      process.exit(failed ? 1 : 0);
    },
  };
}

// Waits until the page in `tab` has loaded: the main menu once its version is filled in from
// the API, a page without that element (the first-boot failure page) once it is complete.
export async function menuLoaded(tab, timeout = 30000) {
  await tab.waitForFunction(() => {
    const v = document.getElementById('home-version');
    return document.readyState === 'complete' && (!v || v.textContent !== 'loading…');
  }, null, { timeout });
}
