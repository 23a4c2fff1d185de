// Drives Software update on the settings page of a real d3kosd in headless Chromium, as an
// owner would: sign in, read which release runs and which is kept, pick a bundle signed by
// a key the device does not trust and see it refused, then install a good one and see the
// page say it is installed and waiting for its try. The signed-in page must pass axe-core
// (WCAG 2.1 A and AA) in both themes.
//
// usage: node update.mjs BASE_URL SETUP_CODE REFUSED_BUNDLE GOOD_BUNDLE OUT_DIR
//
// Prints one JSON line per step and "N passed, M failed"; exits 1 when a step failed.

import path from 'node:path';
import { launch, steps, violations } from './lib.mjs';

const [baseArg, code, refused, good, outDir] = process.argv.slice(2);
if (!baseArg || !code || !refused || !good || !outDir) {
  console.error('usage: node update.mjs BASE_URL SETUP_CODE REFUSED_BUNDLE GOOD_BUNDLE OUT_DIR');
  process.exit(2);
}
const base = new URL(baseArg);
const WAIT = { timeout: 60000 };
const record = steps();

const { browser, close } = await launch();
try {
  for (const theme of ['day', 'night']) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: theme === 'night' ? 'dark' : 'light', reducedMotion: 'reduce' });
    await context.addInitScript(([k, v]) => window.localStorage.setItem(k, v), ['d3kos-theme', theme]);
    const tab = await context.newPage();
    const errors = [];
    tab.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
    const step = async (name, work) => {
      const problems = [];
      try {
        await work(problems);
      } catch (e) {
        problems.push(e.message.split('\n')[0]);
      }
      problems.push(...errors.splice(0));
      record.step(`${theme}: ${name}`, problems);
    };
    await tab.goto(new URL('/settings.html', base).href, { waitUntil: 'networkidle' });

    await step('signed out, the page says who may install', async (problems) => {
      const shown = await tab.locator('#update-signed-out').isVisible();
      const form = await tab.locator('#up-form').isVisible();
      if (theme === 'day' && (!shown || form)) problems.push(`signed out: hint shown ${shown}, form shown ${form}`);
    });

    await step('sign in as the owner', async () => {
      if (await tab.locator('#setup-form').isVisible()) {
        await tab.fill('#setup-code', code);
        await tab.fill('#setup-username', 'skipper');
        await tab.fill('#setup-password', 'harbour lights');
        await tab.fill('#setup-password2', 'harbour lights');
        await tab.click('#setup-form button[type="submit"]');
      } else {
        await tab.fill('#signin-username', 'skipper');
        await tab.fill('#signin-password', 'harbour lights');
        await tab.click('#signin-form button[type="submit"]');
      }
      await tab.locator('#up-form').waitFor({ state: 'visible', ...WAIT });
    });

    if (theme === 'day') {
      await step('the running release and the slot kept are shown', async (problems) => {
        await tab.locator('#up-running', { hasText: '1.0 in slot A' }).waitFor(WAIT);
        const running = await tab.locator('#up-running').innerText();
        if (!running.includes('has run healthy')) problems.push(`running: ${running}`);
        const last = await tab.locator('#up-last').innerText();
        if (last !== 'none yet') problems.push(`last update: ${last}`);
      });

      await step('a bundle signed by another key is refused, saying why', async () => {
        await tab.setInputFiles('#up-file', refused);
        await tab.click('#up-form button[type="submit"]');
        await tab.locator('#update-error', { hasText: 'does not trust' }).waitFor(WAIT);
      });
    }

    await step('the signed-in page passes axe', async (problems) => {
      for (const x of await violations(tab, true)) problems.push(`${x.id}: ${x.help} ${JSON.stringify(x.targets || [])}`);
      await tab.screenshot({ path: path.join(outDir, `update-${theme}.png`), fullPage: true });
    });

    if (theme === 'day') {
      await step('a good bundle is installed and waits for its try', async (problems) => {
        await tab.setInputFiles('#up-file', good);
        await tab.click('#up-form button[type="submit"]');
        await tab.locator('#update-note', { hasText: '2.0 is installed in slot B' }).waitFor(WAIT);
        const note = await tab.locator('#update-note').innerText();
        if (!note.includes('restarts now')) problems.push(`note: ${note}`);
        if ((await tab.locator('#update-error').innerText()).trim()) problems.push('the earlier refusal is still shown');
        await tab.locator('#up-other', { hasText: '2.0 in slot B (installed, not yet tried)' }).waitFor(WAIT);
        const last = await tab.locator('#up-last').innerText();
        if (!last.includes('waiting for its try')) problems.push(`last update: ${last}`);
        if (await tab.locator('#up-progress-box').isVisible()) problems.push('the progress bar stays after the install');
      });
      await step('going back is offered only with a healthy release kept, and a factory restore lists the backups', async (problems) => {
        // Slot B holds 2.0 not yet tried: nothing healthy to go back to.
        if (!(await tab.locator('#up-switch').isDisabled())) problems.push('"Go back" is offered with nothing healthy in the other slot');
        await tab.locator('#up-factory-backup option', { hasText: 'Before an update' }).first().waitFor({ ...WAIT, state: 'attached' });
        const first = await tab.locator('#up-factory-backup option').first().innerText();
        if (first !== 'Keep the data as it is') problems.push(`the first choice is ${first}`);
      });
    }
    await context.close();
  }
} finally {
  await close();
}
record.finish();
