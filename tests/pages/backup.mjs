// Drives Backup & Restore on the settings page of a real d3kosd in headless Chromium, as an
// owner would: create the owner account, make a backup and watch it listed, check it,
// open the restore confirmation and restore, change the automatic-backup settings, and
// upload a hostile archive that must be refused. The page, signed in with the list filled
// and with the confirmation open, must pass axe-core (WCAG 2.1 A and AA) in both themes.
//
// usage: node backup.mjs BASE_URL SETUP_CODE HOSTILE_ARCHIVE OUT_DIR
//
// Prints one JSON line per step and "N passed, M failed"; exits 1 when a step failed.

import path from 'node:path';
import { launch, violations } from './lib.mjs';

const [baseArg, code, hostile, outDir] = process.argv.slice(2);
if (!baseArg || !code || !hostile || !outDir) {
  console.error('usage: node backup.mjs BASE_URL SETUP_CODE HOSTILE_ARCHIVE OUT_DIR');
  process.exit(2);
}
const base = new URL(baseArg);
const WAIT = { timeout: 60000 };

let passed = 0;
let failed = 0;
function report(step, problems, extra = {}) {
  if (problems.length) failed += 1;
  else passed += 1;
  console.log(JSON.stringify({ step, ok: problems.length === 0, problems, ...extra }));
}

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
      report(`${theme}: ${name}`, problems);
    };
    await tab.goto(new URL('/settings.html', base).href, { waitUntil: 'networkidle' });

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
      await tab.locator('#backup-box').waitFor({ state: 'visible', ...WAIT });
    });

    await step('create a backup now', async (problems) => {
      const manual = () => tab.locator('#bk-list tr', { hasText: 'Made by hand' }).count();
      // Count once the list has loaded, not its placeholder.
      await tab.waitForFunction(() => !document.querySelector('#bk-list').innerText.includes('loading'), null, WAIT);
      const before = await manual();
      await tab.click('#bk-create');
      await tab.locator('#backup-note', { hasText: 'made:' }).waitFor(WAIT);
      // The list is reloaded after the message is shown.
      await tab
        .waitForFunction((n) => [...document.querySelectorAll('#bk-list tr')].filter((r) => r.innerText.includes('Made by hand')).length === n, before + 1, WAIT)
        .catch(async () => problems.push(`${before} backups made by hand before, ${await manual()} after`));
      const row = await tab.locator('#bk-list tr', { hasText: 'Made by hand' }).first().innerText();
      if (!row.includes('Yes')) problems.push(`the new backup is not shown as checked: ${row}`);
    });

    await step('check a backup', async () => {
      await tab.locator('#bk-list button[aria-label^="Check"]').first().click();
      await tab.locator('#backup-note', { hasText: 'checks out' }).waitFor(WAIT);
    });

    await step('the signed-in page passes axe', async (problems) => {
      const v = await violations(tab, true);
      for (const x of v) problems.push(`${x.id}: ${x.help} ${JSON.stringify(x.targets || [])}`);
      await tab.screenshot({ path: path.join(outDir, `backup-${theme}.png`), fullPage: true });
    });

    await step('the restore confirmation says what is replaced, and passes axe', async (problems) => {
      await tab.locator('#bk-list button[aria-label^="Restore"]').first().click();
      const dialog = tab.locator('#bk-confirm');
      await dialog.waitFor({ state: 'visible', ...WAIT });
      const said = await tab.locator('#bk-confirm-text').innerText();
      for (const want of ['replaces', 'kept as a backup', 'installation id']) {
        if (!said.includes(want)) problems.push(`the confirmation does not say "${want}": ${said}`);
      }
      const focused = await tab.evaluate(() => document.activeElement && document.activeElement.id);
      if (focused !== 'bk-confirm-no') problems.push(`focus is on ${focused}, not Cancel`);
      for (const x of await violations(tab, true)) problems.push(`${x.id}: ${x.help} ${JSON.stringify(x.targets || [])}`);
      await tab.screenshot({ path: path.join(outDir, `backup-confirm-${theme}.png`) });
      await tab.click('#bk-confirm-yes');
      await tab.locator('#backup-note', { hasText: 'Restored the backup' }).waitFor(WAIT);
      await tab.locator('#bk-list tr', { hasText: 'Before a restore' }).first().waitFor(WAIT);
    });

    await step('automatic backups can be set', async (problems) => {
      await tab.selectOption('#bk-auto-select', 'weekly');
      await tab.fill('#bk-hour', '4');
      await tab.fill('#bk-keep', '5');
      await tab.click('#bk-settings-form button[type="submit"]');
      await tab.locator('#backup-note', { hasText: 'settings saved' }).waitFor(WAIT);
      await tab
        .locator('#bk-auto', { hasText: 'Every Sunday at 4:00 local time, keeping 5' })
        .waitFor(WAIT)
        .catch(async () => problems.push(`settings shown as: ${await tab.locator('#bk-auto').innerText()}`));
      await tab.fill('#bk-hour', '25');
      await tab.click('#bk-settings-form button[type="submit"]');
      await tab.locator('#backup-error', { hasText: '0 to 23' }).waitFor(WAIT);
    });

    await step('a hostile upload is refused and not listed', async (problems) => {
      const rows = await tab.locator('#bk-list tr').count();
      await tab.setInputFiles('#bk-file', hostile);
      await tab.click('#bk-upload-form button[type="submit"]');
      await tab.locator('#backup-error', { hasText: 'climbs out' }).waitFor(WAIT);
      const after = await tab.locator('#bk-list tr').count();
      if (after !== rows) problems.push(`the list changed from ${rows} to ${after} rows`);
    });
    await context.close();
  }
} finally {
  await close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
