// The helm screen's first use in headless Chromium, opened as the device's own browser opens
// it (http://localhost): the main menu shows the one-time setup code until the owner exists;
// the on-screen keyboard opens for a text field, never covers the field being typed into
// (at the 7" touch display's 800×480, 1280×800 and 1920×1200), types what its keys say,
// and creates the owner with the code it shows; afterwards the setup code is gone.
//
// usage: node helm.mjs PORT SETUP_CODE OUT_DIR
//
// Prints one JSON line per step and "N passed, M failed"; exits 1 when a step failed.

import fs from 'node:fs';
import path from 'node:path';
import { launch, steps, violations } from './lib.mjs';

const [portArg, code, outDir] = process.argv.slice(2);
if (!portArg || !code || !outDir) {
  console.error('usage: node helm.mjs PORT SETUP_CODE OUT_DIR');
  process.exit(2);
}
const base = `http://localhost:${portArg}`;
fs.mkdirSync(outDir, { recursive: true });
const WAIT = { timeout: 30000 };
const SIZES = [
  [800, 480],
  [1280, 800],
  [1920, 1200],
];

const { step: report, finish } = steps();

/** Taps the keys for `text` (Shift before capitals, ?123 for the symbols' layout). */
async function typeOnScreen(tab, text) {
  for (const ch of text) {
    const lower = ch.toLowerCase();
    const letters = await tab.$(`#osk button[data-key="${lower === ' ' ? '{space}' : lower.replace('"', '\\"')}"]`);
    if (ch === ' ') {
      await tab.tap('#osk button[data-key="{space}"]');
      continue;
    }
    if (!letters) {
      await tab.tap('#osk button[data-key="{symbols}"]');
      await tab.tap(`#osk button[data-key="${ch}"]`);
      await tab.tap('#osk button[data-key="{letters}"]');
      continue;
    }
    if (ch !== lower) await tab.tap('#osk button[data-key="{shift}"]');
    await tab.tap(`#osk button[data-key="${lower}"]`);
  }
}

/** Where the field and the keyboard are: the field must end above the keyboard's top. */
async function geometry(tab, selector) {
  return tab.evaluate((sel) => {
    const f = document.querySelector(sel).getBoundingClientRect();
    const k = document.getElementById('osk');
    const r = k.getBoundingClientRect();
    return { fieldTop: f.top, fieldBottom: f.bottom, keyboardTop: r.top, shown: !k.hidden, height: window.innerHeight };
  }, selector);
}

const { browser, close } = await launch();
try {
  // The first screen shows the code the console and the config partition show.
  {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, hasTouch: true });
    const tab = await context.newPage();
    await tab.goto(`${base}/`);
    const problems = [];
    try {
      await tab.waitForSelector('#first-use:not([hidden])', WAIT);
      const shown = (await tab.textContent('#fu-code')).trim();
      if (shown !== code) problems.push(`the first screen shows ${shown}, the console ${code}`);
      problems.push(...(await violations(tab, true)).map((v) => `${v.id}: ${v.help} ${JSON.stringify(v.targets)}`));
    } catch (e) {
      problems.push(String(e));
    }
    await tab.screenshot({ path: path.join(outDir, 'helm-first-use.png') });
    report('first screen shows the setup code', problems);
    await context.close();
  }

  // The keyboard at each screen size, on the last field of the owner setup.
  for (const [width, height] of SIZES) {
    const context = await browser.newContext({ viewport: { width, height }, hasTouch: true });
    const tab = await context.newPage();
    const problems = [];
    try {
      await tab.goto(`${base}/settings.html`);
      await tab.waitForSelector('#setup-form:not([hidden])', WAIT);
      await tab.tap('#setup-password');
      await tab.waitForSelector('#osk:not([hidden])', WAIT);
      const g = await geometry(tab, '#setup-password');
      if (!(g.fieldBottom <= g.keyboardTop)) problems.push(`the keyboard (top ${g.keyboardTop}) covers the field (bottom ${g.fieldBottom})`);
      if (!(g.fieldTop >= 0)) problems.push(`the field is scrolled off the top (${g.fieldTop})`);
      await typeOnScreen(tab, 'Ab1 x!');
      const value = await tab.inputValue('#setup-password');
      if (value !== 'Ab1 x!') problems.push(`typed "Ab1 x!", the field has "${value}"`);
      await tab.tap('#osk button[data-key="{back}"]');
      const after = await tab.inputValue('#setup-password');
      if (after !== 'Ab1 x') problems.push(`Delete left "${after}"`);
      const focused = await tab.evaluate(() => document.activeElement && document.activeElement.id);
      if (focused !== 'setup-password') problems.push(`typing moved the focus to ${focused}`);
      problems.push(...(await violations(tab, true)).map((v) => `${v.id}: ${v.help} ${JSON.stringify(v.targets)}`));
      await tab.screenshot({ path: path.join(outDir, `helm-keyboard-${width}x${height}.png`) });
      await tab.tap('#osk button[data-key="{hide}"]');
      const hidden = await tab.evaluate(() => document.getElementById('osk').hidden && document.body.style.paddingBottom === '');
      if (!hidden) problems.push('Hide did not close the keyboard');
    } catch (e) {
      problems.push(String(e));
    }
    report(`keyboard at ${width}×${height} keeps the field visible and types`, problems);
    await context.close();
  }

  // The owner made from the helm screen with the keyboard alone; then the code is gone.
  {
    const context = await browser.newContext({ viewport: { width: 800, height: 480 }, hasTouch: true });
    const tab = await context.newPage();
    const problems = [];
    try {
      await tab.goto(`${base}/settings.html`);
      await tab.waitForSelector('#setup-form:not([hidden])', WAIT);
      for (const [sel, text] of [
        ['#setup-code', code],
        ['#setup-username', 'skipper'],
        ['#setup-password', 'Harbour lights 7'],
        ['#setup-password2', 'Harbour lights 7'],
      ]) {
        await tab.tap(sel);
        await tab.waitForSelector('#osk:not([hidden])', WAIT);
        const g = await geometry(tab, sel);
        if (!(g.fieldBottom <= g.keyboardTop)) problems.push(`${sel}: covered by the keyboard`);
        await typeOnScreen(tab, text);
      }
      await tab.tap('#osk button[data-key="{enter}"]');
      await tab.waitForSelector('#setup-form', { state: 'hidden', ...WAIT });
      await tab.goto(`${base}/`);
      await tab.waitForLoadState('networkidle');
      const firstUse = await tab.evaluate(() => document.getElementById('first-use').hidden);
      if (!firstUse) problems.push('the setup code is still on the first screen after the owner exists');
    } catch (e) {
      problems.push(String(e));
    }
    await tab.screenshot({ path: path.join(outDir, 'helm-owner-made.png') });
    report('the owner is made from the helm screen with the on-screen keyboard', problems);
    await context.close();
  }
} finally {
  await close();
}
finish();
