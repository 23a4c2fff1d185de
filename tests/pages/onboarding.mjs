// Drives the setup wizard of a real d3kosd in headless Chromium as an owner would, on the
// helm screen (1920×1200) and on a phone (390×844): every step filled, each wrong value
// refused with its question's message (the same words the API gives for it), units
// switched both ways, Back keeping the answers, Save & Exit on the helm screen and the
// wizard resumed on the phone, the CX5106 switches drawn, the pairing code, the finish,
// and the device's last reset (it has used 9 of 10) then one refused. Every step passes axe-core (WCAG 2.1 A and AA) at both sizes in both
// themes, with a screenshot of each.
//
// usage: node onboarding.mjs BASE_URL SETUP_CODE OUT_DIR
//
// Writes OUT_DIR/pairing.svg (the code the page showed) and OUT_DIR/pairing-url.txt (the
// URL it must hold) for the caller to decode. Prints one JSON line per step and
// "N passed, M failed"; exits 1 when a step failed.

import fs from 'node:fs';
import path from 'node:path';
import { launch, steps, violations } from './lib.mjs';

const [baseArg, code, outDir] = process.argv.slice(2);
if (!baseArg || !code || !outDir) {
  console.error('usage: node onboarding.mjs BASE_URL SETUP_CODE OUT_DIR');
  process.exit(2);
}
const base = new URL(baseArg);
const at = (p) => new URL(p, base).href;
const WAIT = { timeout: 30000 };
const HELM = { width: 1920, height: 1200 };
const PHONE = { width: 390, height: 844 };
const OWNER = { username: 'skipper', password: 'harbour lights' };
const { step, finish } = steps();

async function apiJson(p, init) {
  const r = await fetch(at(p), init);
  return r.json();
}

// The owner, made the way the first-use page makes it.
const made = await apiJson('/api/setup/owner', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ setup_code: code, ...OWNER }),
});
if (!made.success) {
  console.error(`could not create the owner: ${JSON.stringify(made)}`);
  process.exit(1);
}
const table = (await apiJson('/api/onboarding/questions')).data;
const Q = Object.fromEntries(table.questions.map((q) => [q.key, q]));
const licence = (await apiJson('/license/info')).data;
const version = (await apiJson('/api/version')).version;

/** A number in unit `unitId` of question `key`, as stored (the question's first unit). */
function stored(key, shownValue, unitId) {
  const u = Q[key].units.find((x) => x.id === unitId) || { scale: 1, offset: 0 };
  return (shownValue - u.offset) / u.scale;
}

const { browser, close } = await launch();

/** Signs in through the wizard's own form and waits for the step it resumes at. */
async function signIn(tab) {
  await tab.goto(at('/onboarding'), { waitUntil: 'networkidle' });
  await tab.locator('#wz-signin-form').waitFor({ state: 'visible', ...WAIT });
  await tab.fill('#wz-username', OWNER.username);
  await tab.fill('#wz-password', OWNER.password);
  await tab.click('#wz-signin-form button[type="submit"]');
  await tab.locator('#wz-form').waitFor({ state: 'visible', ...WAIT });
}

async function stepNumber(tab) {
  const t = await tab.locator('#wz-count').innerText();
  return Number(/Step (\d+) of/.exec(t)[1]);
}

async function waitStep(tab, n) {
  await tab.waitForFunction((want) => new RegExp(`^Step ${want} of 20`).test(document.querySelector('#wz-count').textContent), n, WAIT);
}

async function next(tab, to) {
  await tab.click('#wz-next');
  await waitStep(tab, to);
}

async function back(tab, to) {
  await tab.click('#wz-back');
  await waitStep(tab, to);
}

/** axe at both sizes in both themes, and a screenshot at each size; leaves `size`. */
async function audit(tab, name, size, problems) {
  const settled = () => tab.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  for (const [label, vp] of [['helm', HELM], ['phone', PHONE]]) {
    // axe reads colours where things are drawn: let the new size's layout settle first.
    await tab.setViewportSize(vp);
    await settled();
    for (let t = 0; t < 2; t += 1) {
      const theme = await tab.evaluate(() => document.documentElement.dataset.theme || 'system');
      for (const v of await violations(tab, true)) problems.push(`${label} ${theme}: ${v.id} ${v.help} ${JSON.stringify(v.targets)} ${JSON.stringify(v.why)}`);
      if (t === 0) await tab.screenshot({ path: path.join(outDir, `onboarding-${name}-${label}-${theme}.png`), fullPage: true });
      // The page's own button; clicked in the page, as a resized phone emulation can stall
      // Playwright's scroll-into-view.
      await tab.evaluate(() => document.querySelector('[data-theme-toggle]').click());
      await settled();
    }
  }
  await tab.setViewportSize(size);
}

/** Tries each wrong value: it must be refused with the question's message, the API must
 * give the same words, and the wizard must stay on its step. */
async function refuses(tab, key, typed, unitId, problems) {
  const before = await stepNumber(tab);
  if (unitId) await tab.click(`.q-field[data-key="${key}"] .unit-switch button[data-unit="${unitId}"]`);
  await tab.fill(`#q-${key}`, typed);
  await tab.click('#wz-next');
  const err = tab.locator(`#q-${key}-error`);
  await tab.waitForFunction((id) => document.getElementById(id).textContent !== '', `q-${key}-error`, WAIT);
  const shownMessage = await err.innerText();
  if (shownMessage !== Q[key].message) problems.push(`${key}=${typed}: shown "${shownMessage}", the question's message is "${Q[key].message}"`);
  if ((await stepNumber(tab)) !== before) problems.push(`${key}=${typed}: the wizard moved on`);
  if ((await tab.locator(`#q-${key}`).getAttribute('aria-invalid')) !== 'true') problems.push(`${key}=${typed}: the field is not marked invalid`);
  // The same value through the API.
  const n = Number(typed);
  const numeric = Q[key].kind.type === 'number' && typed.trim() !== '' && !Number.isNaN(n);
  const value = numeric ? stored(key, n, unitId) : typed;
  const r = await tab.evaluate(
    async ([k, v, step]) => {
      const now = await (await fetch('/api/onboarding')).json();
      const res = await fetch('/api/onboarding', {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ step, answers: { ...now.data.answers, [k]: v } }),
      });
      return { status: res.status, body: await res.json() };
    },
    [key, value, before],
  );
  const said = r.body.error && r.body.error.fields && r.body.error.fields[key];
  if (r.status !== 400 || said !== shownMessage) problems.push(`${key}=${typed}: the API answered ${r.status} "${said}", the page "${shownMessage}"`);
}

const answersNow = async (tab) => tab.evaluate(async () => (await (await fetch('/api/onboarding')).json()).data);

try {
  // ------------------------------------------------------------ the helm screen, steps 1–11
  const helm = await browser.newContext({ viewport: HELM, colorScheme: 'light', reducedMotion: 'reduce' });
  await helm.addInitScript(() => {
    if (!window.localStorage.getItem('d3kos-theme')) window.localStorage.setItem('d3kos-theme', 'day');
  });
  let tab = await helm.newPage();
  const errors = [];
  tab.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  const run = async (name, work) => {
    const problems = [];
    try {
      await work(problems);
    } catch (e) {
      problems.push(e.message.split('\n').slice(0, 8).join(' | '));
    }
    problems.push(...errors.splice(0));
    step(name, problems);
  };

  await run('helm: sign in on the wizard', async () => signIn(tab));
  await run('helm: step 1 welcome', async (p) => {
    await waitStep(tab, 1);
    await audit(tab, '01-welcome', HELM, p);
    await tab.fill('#q-boat_name', 'Sea Otter & Co');
    await next(tab, 2);
  });
  await run('helm: step 2 engine, a one-letter maker refused', async (p) => {
    await audit(tab, '02-engine', HELM, p);
    await refuses(tab, 'model', '', null, p);
    await tab.fill('#q-model', '3YM30');
    await refuses(tab, 'manufacturer', 'Y', null, p);
    await tab.fill('#q-manufacturer', 'Yanmar');
    await next(tab, 3);
  });
  await run('helm: step 3 year, out of range and not whole refused', async (p) => {
    await audit(tab, '03-year', HELM, p);
    await refuses(tab, 'year', '1949', null, p);
    await refuses(tab, 'year', String(new Date().getUTCFullYear() + 1), null, p);
    await refuses(tab, 'year', '2015.5', null, p);
    await tab.fill('#q-year', '2015');
    await next(tab, 4);
  });
  await run('helm: step 4 cylinders and cycle', async (p) => {
    await audit(tab, '04-cylinders', HELM, p);
    await refuses(tab, 'cylinders', '17', null, p);
    await tab.fill('#q-cylinders', '3');
    await tab.check('#q-stroke_cycle-four');
    await next(tab, 5);
  });
  await run('helm: step 5 displacement, L ⇄ CID round trip', async (p) => {
    await audit(tab, '05-displacement', HELM, p);
    await refuses(tab, 'displacement_l', '15.5', 'l', p);
    await refuses(tab, 'displacement_l', '916', 'cid', p);
    await tab.click('.q-field[data-key="displacement_l"] .unit-switch button[data-unit="l"]');
    await tab.fill('#q-displacement_l', '1.3');
    await tab.click('.q-field[data-key="displacement_l"] .unit-switch button[data-unit="cid"]');
    const cid = await tab.inputValue('#q-displacement_l');
    if (cid !== '79') p.push(`1.3 L shown as ${cid} CID, not 79`);
    await tab.click('.q-field[data-key="displacement_l"] .unit-switch button[data-unit="l"]');
    const l = await tab.inputValue('#q-displacement_l');
    if (l !== '1.3') p.push(`back in litres it reads ${l}, not 1.3`);
    // Entered in cubic inches: stored in litres, shown again in cubic inches.
    await tab.click('.q-field[data-key="displacement_l"] .unit-switch button[data-unit="cid"]');
    await tab.fill('#q-displacement_l', '77');
    await next(tab, 6);
    const a = await answersNow(tab);
    if (Math.abs(a.answers.displacement_l - 77 / 61.02374409473228) > 1e-9) p.push(`77 CID stored as ${a.answers.displacement_l} L`);
    if (a.units.displacement_l !== 'cid') p.push(`the unit kept is ${a.units.displacement_l}`);
  });
  await run('helm: step 6 compression ratio', async (p) => {
    await audit(tab, '06-compression', HELM, p);
    await refuses(tab, 'compression_ratio', '6.9', null, p);
    await refuses(tab, 'compression_ratio', 'twenty', null, p);
    await tab.fill('#q-compression_ratio', '21.2');
    await next(tab, 7);
  });
  await run('helm: step 7 stroke, mm ⇄ in', async (p) => {
    await audit(tab, '07-stroke', HELM, p);
    await refuses(tab, 'stroke_mm', '49', 'mm', p);
    await refuses(tab, 'stroke_mm', '7.9', 'in', p);
    await tab.click('.q-field[data-key="stroke_mm"] .unit-switch button[data-unit="mm"]');
    await tab.fill('#q-stroke_mm', '86');
    await tab.click('.q-field[data-key="stroke_mm"] .unit-switch button[data-unit="in"]');
    const inch = await tab.inputValue('#q-stroke_mm');
    if (inch !== '3.39') p.push(`86 mm shown as ${inch} in, not 3.39`);
    await tab.click('.q-field[data-key="stroke_mm"] .unit-switch button[data-unit="mm"]');
    if ((await tab.inputValue('#q-stroke_mm')) !== '86') p.push('86 mm did not come back as 86');
    await next(tab, 8);
  });
  await run('helm: Back keeps the answers', async (p) => {
    await back(tab, 7);
    if ((await tab.inputValue('#q-stroke_mm')) !== '86') p.push(`stroke reads ${await tab.inputValue('#q-stroke_mm')}`);
    await back(tab, 6);
    if ((await tab.inputValue('#q-compression_ratio')) !== '21.2') p.push('compression ratio lost');
    await back(tab, 5);
    if ((await tab.inputValue('#q-displacement_l')) !== '77') p.push(`displacement reads ${await tab.inputValue('#q-displacement_l')}, not 77 (CID)`);
    const pressed = await tab.getAttribute('.q-field[data-key="displacement_l"] .unit-switch button[data-unit="cid"]', 'aria-pressed');
    if (pressed !== 'true') p.push('the CID unit is not the one chosen');
    await back(tab, 4);
    if ((await tab.inputValue('#q-cylinders')) !== '3') p.push('cylinders lost');
    if (!(await tab.isChecked('#q-stroke_cycle-four'))) p.push('the cycle lost');
    await back(tab, 3);
    await back(tab, 2);
    if ((await tab.inputValue('#q-manufacturer')) !== 'Yanmar') p.push('the maker lost');
    for (let n = 3; n <= 8; n += 1) await next(tab, n);
  });
  await run('helm: step 8 induction', async (p) => {
    await audit(tab, '08-induction', HELM, p);
    await tab.check('#q-induction-naturally_aspirated');
    await next(tab, 9);
  });
  await run('helm: step 9 power, HP ⇄ kW', async (p) => {
    await audit(tab, '09-power', HELM, p);
    await refuses(tab, 'power_hp', '1001', 'hp', p);
    await refuses(tab, 'power_hp', '7.4', 'kw', p);
    await tab.click('.q-field[data-key="power_hp"] .unit-switch button[data-unit="kw"]');
    await tab.fill('#q-power_hp', '21.3');
    await tab.click('.q-field[data-key="power_hp"] .unit-switch button[data-unit="hp"]');
    if ((await tab.inputValue('#q-power_hp')) !== '29') p.push(`21.3 kW shown as ${await tab.inputValue('#q-power_hp')} HP`);
    await tab.click('.q-field[data-key="power_hp"] .unit-switch button[data-unit="kw"]');
    if ((await tab.inputValue('#q-power_hp')) !== '21.3') p.push('21.3 kW did not come back');
    await next(tab, 10);
  });
  await run('helm: step 10 idle speed', async (p) => {
    await audit(tab, '10-idle', HELM, p);
    await refuses(tab, 'idle_rpm', '399', null, p);
    await refuses(tab, 'idle_rpm', '850.5', null, p);
    await tab.fill('#q-idle_rpm', '850');
    await next(tab, 11);
  });
  await run('helm: step 11 WOT range, max above min', async (p) => {
    await audit(tab, '11-wot', HELM, p);
    await refuses(tab, 'wot_max_rpm', '7001', null, p);
    await tab.fill('#q-wot_min_rpm', '3600');
    await tab.fill('#q-wot_max_rpm', '3400');
    await tab.click('#wz-next');
    const rule = table.rules.find((r) => r.id === 'wot_order').message;
    await tab.waitForFunction(() => document.getElementById('q-wot_max_rpm-error').textContent !== '', null, WAIT);
    const said = await tab.innerText('#q-wot_max_rpm-error');
    if (said !== rule) p.push(`max below min: "${said}"`);
    await tab.fill('#q-wot_min_rpm', '3400');
    await tab.fill('#q-wot_max_rpm', '3600');
    await next(tab, 12);
  });
  await run('helm: Save & Exit on step 12', async (p) => {
    await tab.fill('#q-max_coolant_f', '185');
    await tab.click('#wz-exit');
    await tab.waitForURL(at('/'), WAIT);
    const a = await answersNow(tab);
    if (a.step !== 12 || a.answers.max_coolant_f !== 185) p.push(`kept: step ${a.step}, coolant ${a.answers.max_coolant_f}`);
  });

  // ------------------------------------------------------------ the phone, steps 12–20
  const phone = await browser.newContext({ viewport: PHONE, colorScheme: 'dark', reducedMotion: 'reduce', hasTouch: true });
  await phone.addInitScript(() => {
    if (!window.localStorage.getItem('d3kos-theme')) window.localStorage.setItem('d3kos-theme', 'night');
  });
  tab = await phone.newPage();
  tab.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  await run('phone: sign in and resume where the helm left off', async (p) => {
    await signIn(tab);
    await waitStep(tab, 12);
    if ((await tab.inputValue('#q-max_coolant_f')) !== '185') p.push(`coolant reads ${await tab.inputValue('#q-max_coolant_f')}`);
    await back(tab, 11);
    if ((await tab.inputValue('#q-wot_max_rpm')) !== '3600') p.push('the WOT range was not resumed');
    await next(tab, 12);
  });
  await run('phone: step 12 coolant, °F ⇄ °C', async (p) => {
    await audit(tab, '12-coolant', PHONE, p);
    await refuses(tab, 'max_coolant_f', '221', 'f', p);
    await refuses(tab, 'max_coolant_f', '104.5', 'c', p);
    await tab.click('.q-field[data-key="max_coolant_f"] .unit-switch button[data-unit="c"]');
    await tab.fill('#q-max_coolant_f', '85');
    await tab.click('.q-field[data-key="max_coolant_f"] .unit-switch button[data-unit="f"]');
    if ((await tab.inputValue('#q-max_coolant_f')) !== '185') p.push(`85 °C shown as ${await tab.inputValue('#q-max_coolant_f')} °F`);
    await tab.click('.q-field[data-key="max_coolant_f"] .unit-switch button[data-unit="c"]');
    if ((await tab.inputValue('#q-max_coolant_f')) !== '85') p.push('85 °C did not come back');
    await next(tab, 13);
  });
  await run('phone: step 13 oil pressure', async (p) => {
    await audit(tab, '13-oil', PHONE, p);
    await refuses(tab, 'min_oil_idle_psi', '4', null, p);
    await refuses(tab, 'min_oil_cruise_psi', '81', null, p);
    await tab.fill('#q-min_oil_idle_psi', '12');
    await tab.fill('#q-min_oil_cruise_psi', '45');
    await next(tab, 14);
  });
  await run('phone: step 14 engines aboard and position', async (p) => {
    await audit(tab, '14-engines', PHONE, p);
    await refuses(tab, 'engines', '5', null, p);
    await tab.fill('#q-engines', '2');
    const shownOptions = await tab.locator('.q-field[data-key="position"] .choice:visible').evaluateAll((ls) => ls.map((l) => l.dataset.value));
    if (shownOptions.join() !== 'port,starboard') p.push(`two engines offer ${shownOptions}`);
    await tab.fill('#q-engines', '1');
    if (!(await tab.isChecked('#q-position-single'))) p.push('one engine is not the only engine');
    await next(tab, 15);
  });
  await run('phone: step 15 RPM signal', async (p) => {
    await audit(tab, '15-rpm', PHONE, p);
    await tab.check('#q-rpm_source-magnetic_pickup');
    await next(tab, 16);
  });
  await run('phone: step 16 gear ratio', async (p) => {
    await audit(tab, '16-gear', PHONE, p);
    await refuses(tab, 'gear_ratio', '0.9', null, p);
    await tab.fill('#q-gear_ratio', '2');
    await next(tab, 17);
  });
  await run('phone: step 17 tank senders', async (p) => {
    await audit(tab, '17-senders', PHONE, p);
    await tab.check('#q-sender-european');
    await next(tab, 18);
  });
  await run('phone: step 18 the CX5106 switches', async (p) => {
    await tab.locator('#wz-dip-list tr').first().waitFor(WAIT);
    await audit(tab, '18-dip', PHONE, p);
    const drawn = async (row) => tab.locator(`#wz-dip-row${row} .dip-switch`).evaluateAll((s) => s.map((x) => (x.dataset.on === 'true' ? '1' : '0')).join(''));
    // A single Yanmar 3YM30: instance 0, magnetic pickup, 3 cylinders, 4-stroke, 2:1;
    // European senders, not the starboard engine.
    if ((await drawn(1)) !== '00011101') p.push(`row 1 drawn ${await drawn(1)}`);
    if ((await drawn(2)) !== '00') p.push(`row 2 drawn ${await drawn(2)}`);
    const rows = await tab.locator('#wz-dip-list tr').count();
    if (rows !== 10) p.push(`${rows} switches listed`);
    const why = await tab.innerText('#wz-dip-list');
    if (!why.includes('magnetic pickup') || !why.includes('3 cylinders')) p.push(`reasons: ${why}`);
    if (!(await tab.innerText('#wz-dip-for')).includes('Yanmar 3YM30 2015')) p.push('the printout does not name the engine');
    await tab.emulateMedia({ media: 'print' });
    const navHidden = await tab.locator('.wizard-nav').isHidden();
    if (!navHidden) p.push('the buttons are printed');
    await tab.screenshot({ path: path.join(outDir, 'onboarding-18-dip-print.png'), fullPage: true });
    await tab.emulateMedia({ media: 'screen' });
    await next(tab, 19);
  });
  await run('phone: step 19 the pairing code', async (p) => {
    await tab.locator('#wz-qr').waitFor(WAIT);
    await tab.waitForFunction(() => document.getElementById('wz-qr').complete && document.getElementById('wz-qr').naturalWidth > 0, null, WAIT);
    await audit(tab, '19-pairing', PHONE, p);
    const want = `d3kos://pair?id=${licence.installation_id}&version=${version}&tier=${licence.tier}&boat=Sea%20Otter%20%26%20Co`;
    const shownUrl = await tab.innerText('#wz-pair-url');
    if (shownUrl !== want) p.push(`the page says ${shownUrl}, want ${want}`);
    const svg = await tab.evaluate(async () => (await fetch(document.getElementById('wz-qr').src)).text());
    fs.writeFileSync(path.join(outDir, 'pairing.svg'), svg);
    fs.writeFileSync(path.join(outDir, 'pairing-url.txt'), want);
    await tab.click('#wz-regenerate');
    await tab.waitForFunction(() => document.getElementById('wz-qr').complete, null, WAIT);
    await next(tab, 20);
  });
  await run('phone: step 20 finished, limits shown, the dashboard linked', async (p) => {
    await audit(tab, '20-done', PHONE, p);
    const a = await answersNow(tab);
    if (!a.finished || a.unanswered.length) p.push(`finished ${a.finished}, unanswered ${a.unanswered}`);
    const limits = await tab.innerText('#wz-limits');
    for (const want of ['85 °C', '12 PSI', '45 PSI', '3400 RPM to 3600 RPM']) if (!limits.includes(want)) p.push(`limits lack "${want}": ${limits}`);
    if ((await tab.getAttribute('#wz-dashboard', 'href')) !== '/dashboard.html') p.push('no link to the dashboard');
    const expected = {
      boat_name: 'Sea Otter & Co', manufacturer: 'Yanmar', model: '3YM30', year: 2015, cylinders: 3, stroke_cycle: 'four',
      compression_ratio: 21.2, stroke_mm: 86, induction: 'naturally_aspirated', idle_rpm: 850, wot_min_rpm: 3400,
      wot_max_rpm: 3600, min_oil_idle_psi: 12, min_oil_cruise_psi: 45, engines: 1, position: 'single',
      rpm_source: 'magnetic_pickup', gear_ratio: 2, sender: 'european',
    };
    for (const [k, v] of Object.entries(expected)) if (a.answers[k] !== v) p.push(`${k} kept as ${JSON.stringify(a.answers[k])}, want ${JSON.stringify(v)}`);
    const close = (k, v) => Math.abs(a.answers[k] - v) < 1e-9;
    if (!close('power_hp', 21.3 / 0.7456998715822702)) p.push(`power kept as ${a.answers.power_hp}`);
    if (!close('max_coolant_f', (85 * 9) / 5 + 32)) p.push(`coolant kept as ${a.answers.max_coolant_f}`);
    await tab.click('#wz-dashboard');
    await tab.waitForURL(at('/dashboard.html'), WAIT);
  });

  // ------------------------------------------------------------ a reset on the helm screen
  tab = await helm.newPage();
  tab.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  await run('helm: a finished wizard reset, counted', async (p) => {
    await tab.goto(at('/onboarding'), { waitUntil: 'networkidle' });
    await waitStep(tab, 20);
    // The device has used 9 of its 10 resets: this one is the last, and says so.
    const warning = await tab.innerText('#wz-reset-warning');
    if (!warning.includes('This is the last reset')) p.push(`the warning reads "${warning}"`);
    await tab.click('#wz-reset');
    await tab.locator('#wz-reset-confirm').waitFor({ state: 'visible', ...WAIT });
    await audit(tab, '20-reset-confirm', HELM, p);
    await tab.click('#wz-reset-yes');
    await tab.locator('#wz-reset-note', { hasText: 'starts again' }).waitFor(WAIT);
    await waitStep(tab, 1);
    const a = await answersNow(tab);
    if (Object.keys(a.answers).length || a.finished || a.resets.used !== 10) p.push(`after the reset: ${JSON.stringify(a)}`);
    if (!(await tab.innerText('#wz-resets-count')).includes('10 of 10')) p.push(await tab.innerText('#wz-resets-count'));
    if ((await tab.inputValue('#q-boat_name')) !== '') p.push('the boat name is still shown');
  });
  await run('helm: no reset left: refused with the options, nothing changed', async (p) => {
    await tab.fill('#q-boat_name', 'Second Wind');
    await next(tab, 2);
    await tab.click('#wz-reset');
    await tab.click('#wz-reset-yes');
    await tab.locator('#wz-reset-refused').waitFor({ state: 'visible', ...WAIT });
    const said = await tab.innerText('#wz-reset-refused');
    for (const want of ['All 10 resets', 'nothing was changed', 'Pro or Fleet', 'fresh d3kOS image']) if (!said.includes(want)) p.push(`the refusal lacks "${want}": ${said}`);
    if (!(await tab.isVisible('#wz-reset-upgrade a'))) p.push('no way to the licence settings');
    await audit(tab, '20-reset-refused', HELM, p);
    const a = await answersNow(tab);
    if (a.step !== 2 || a.answers.boat_name !== 'Second Wind' || a.resets.used !== 10) p.push(`after the refusal: ${JSON.stringify(a)}`);
  });
} finally {
  await close();
}
finish();
