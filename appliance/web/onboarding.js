// d3kOS setup wizard: 20 steps built from the device's own question table
// (/api/onboarding/questions), so the page checks every answer with the same ranges and
// says the same words as the server. Progress is saved on the device at every step.
(function () {
  'use strict';

  const { api } = window.d3kos;
  const $ = (id) => document.getElementById(id);

  const wz = {
    steps: [],
    questions: {},
    rules: [],
    step: 1,
    answers: {},
    units: {},
    finished: false,
    resets: null,
    // Raw text of fields whose value is not (yet) valid, kept while moving back and forth.
    draft: {},
  };

  // ---------------------------------------------------------------- numbers and units

  function trimNumber(n) {
    const s = n.toFixed(4).replace(/0+$/, '').replace(/\.$/, '');
    return s === '-0' ? '0' : s;
  }

  function unitOf(q) {
    if (!q.units.length) return null;
    return q.units.find((u) => u.id === wz.units[q.key]) || q.units[0];
  }

  function shown(q, stored) {
    const u = unitOf(q);
    if (!u) return trimNumber(stored);
    const f = 10 ** u.digits;
    return trimNumber(Math.round((stored * u.scale + u.offset) * f) / f);
  }

  /** The number typed, or null: "5,7" is read as 5.7. */
  function parseNumber(text) {
    let t = String(text).trim();
    if (/^-?\d+,\d+$/.test(t)) t = t.replace(',', '.');
    if (!/^-?(\d+\.?\d*|\.\d+)$/.test(t)) return null;
    return Number(t);
  }

  // ---------------------------------------------------------------- checks (as the server)

  function controlChar(s) {
    return /[\u0000-\u001f\u007f-\u009f]/.test(s);
  }

  /** The value question `q` keeps for `v`, `undefined` for no answer; throws its message. */
  function normalise(q, v) {
    if (v === null || v === undefined) return undefined;
    const k = q.kind;
    if (k.type === 'text') {
      if (typeof v !== 'string') throw q.message;
      const s = v.trim();
      const n = Array.from(s).length;
      if (n === 0 && !q.required) return undefined;
      if (n < k.min || n > k.max || controlChar(s)) throw q.message;
      return s;
    }
    if (k.type === 'number') {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw q.message;
      const eps = 1e-9 * Math.max(Math.abs(k.max), 1);
      if (v < k.min - eps || v > k.max + eps || (k.whole && !Number.isInteger(v))) throw q.message;
      return v;
    }
    if (typeof v !== 'string' || !k.options.some(([value]) => value === v)) throw q.message;
    return v;
  }

  function positionFits(engines, position) {
    if (engines === 1) return position === 'single';
    if (engines === 2) return position === 'port' || position === 'starboard';
    return ['port', 'starboard', 'centre_aux'].includes(position);
  }

  function ruleBroken(id, a) {
    if (id === 'wot_order') return isNum(a.wot_min_rpm) && isNum(a.wot_max_rpm) && a.wot_max_rpm <= a.wot_min_rpm;
    if (id === 'oil_order') return isNum(a.min_oil_idle_psi) && isNum(a.min_oil_cruise_psi) && a.min_oil_cruise_psi <= a.min_oil_idle_psi;
    if (id === 'position_fits') return isNum(a.engines) && typeof a.position === 'string' && !positionFits(a.engines, a.position);
    return false;
  }

  function isNum(v) {
    return typeof v === 'number' && Number.isFinite(v);
  }

  // ---------------------------------------------------------------- fields

  function fieldId(key) {
    return `q-${key}`;
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === true) e.setAttribute(k, '');
      else if (v !== false && v !== null && v !== undefined) e.setAttribute(k, v);
    }
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function current(key) {
    if (wz.answers[key] !== undefined) return wz.answers[key];
    return wz.questions[key].default;
  }

  function textFor(q) {
    if (wz.draft[q.key] !== undefined) return wz.draft[q.key];
    const v = current(q.key);
    if (v === null || v === undefined) return '';
    return q.kind.type === 'number' ? shown(q, v) : String(v);
  }

  function buildField(q) {
    const id = fieldId(q.key);
    const box = el('div', { class: `field q-field q-${q.kind.type}`, 'data-key': q.key });
    const hint = el('p', { class: 'hint', id: `${id}-hint` }, q.hint);
    const err = el('p', { class: 'field-error', id: `${id}-error`, 'aria-live': 'polite' });
    if (q.kind.type === 'choice') {
      const set = el('fieldset', { class: 'choices', 'aria-describedby': `${id}-hint ${id}-error` });
      set.append(el('legend', {}, q.label));
      const value = current(q.key);
      for (const [v, label] of q.kind.options) {
        const opt = el('label', { class: 'choice', 'data-value': v });
        const input = el('input', { type: 'radio', name: id, value: v, id: `${id}-${v}` });
        input.checked = value === v;
        opt.append(input, el('span', { class: 'choice-text' }, label));
        set.append(opt);
      }
      box.append(set, hint, err);
      return box;
    }
    box.append(el('label', { for: id }, q.label));
    const row = el('div', { class: 'input-row' });
    const input = el('input', {
      type: 'text',
      id,
      autocomplete: 'off',
      spellcheck: 'false',
      inputmode: q.kind.type === 'number' ? (q.kind.whole ? 'numeric' : 'decimal') : null,
      'aria-describedby': `${id}-unit ${id}-hint ${id}-error`,
      maxlength: q.kind.type === 'text' ? String(q.kind.max + 20) : null,
    });
    input.value = textFor(q);
    input.dataset.shown = input.value;
    const value = current(q.key);
    if (q.kind.type === 'number' && wz.draft[q.key] === undefined && typeof value === 'number') {
      input.dataset.exact = String(value);
    }
    row.append(input);
    const u = unitOf(q);
    // With a choice of units the pressed button shows the unit; the label stays for readers.
    const unitText = el('span', { class: q.units.length > 1 ? 'unit-label visually-hidden' : 'unit-label', id: `${id}-unit` }, u ? u.label : '');
    row.append(unitText);
    if (q.units.length > 1) {
      const group = el('div', { class: 'unit-switch', role: 'group', 'aria-label': `Unit for ${q.label}` });
      for (const unit of q.units) {
        const b = el('button', { type: 'button', class: 'secondary', 'data-unit': unit.id, 'aria-pressed': String(unit.id === u.id) }, unit.label);
        b.addEventListener('click', () => switchUnit(q, unit.id));
        group.append(b);
      }
      row.append(group);
    }
    box.append(row, hint, err);
    return box;
  }

  /** What the owner entered in field `q`: `{value}` (undefined: no answer) or `{raw}`. */
  function readField(q) {
    const id = fieldId(q.key);
    if (q.kind.type === 'choice') {
      const picked = document.querySelector(`input[name="${id}"]:checked`);
      return { value: picked ? picked.value : undefined };
    }
    const input = $(id);
    const text = input.value;
    if (q.kind.type === 'text') return { value: text };
    if (text.trim() === '') return { value: undefined, raw: text };
    // An untouched field keeps its value exactly: switching units back and forth or
    // saving again never drifts by rounding.
    if (text === input.dataset.shown && input.dataset.exact !== undefined) {
      return { value: Number(input.dataset.exact) };
    }
    const n = parseNumber(text);
    if (n === null) return { value: text, raw: text };
    const u = unitOf(q);
    return { value: u ? (n - u.offset) / u.scale : n, raw: text };
  }

  /** Shows field `q` in another unit: the quantity stays, only its unit changes. */
  function switchUnit(q, unitId) {
    const input = $(fieldId(q.key));
    const read = readField(q);
    wz.units[q.key] = unitId;
    if (typeof read.value === 'number') {
      input.value = shown(q, read.value);
      input.dataset.shown = input.value;
      input.dataset.exact = String(read.value);
      delete wz.draft[q.key];
    }
    $(`${fieldId(q.key)}-unit`).textContent = unitOf(q).label;
    for (const b of input.parentElement.querySelectorAll('.unit-switch button')) {
      b.setAttribute('aria-pressed', String(b.dataset.unit === unitId));
    }
  }

  function showFieldError(key, message) {
    const id = fieldId(key);
    const box = document.querySelector(`.q-field[data-key="${key}"]`);
    if (!box) return;
    const err = $(`${id}-error`);
    err.textContent = message || '';
    const target = box.querySelector('input[type="text"]') || box.querySelector('fieldset');
    if (message) target.setAttribute('aria-invalid', 'true');
    else target.removeAttribute('aria-invalid');
  }

  function fitPositions() {
    const box = document.querySelector('.q-field[data-key="position"]');
    if (!box) return;
    const enginesQ = wz.questions.engines;
    const r = readField(enginesQ);
    const n = typeof r.value === 'number' ? Math.round(r.value) : current('engines');
    for (const opt of box.querySelectorAll('.choice')) {
      const fits = positionFits(n, opt.dataset.value);
      opt.hidden = !fits;
      const input = opt.querySelector('input');
      if (!fits && input.checked) input.checked = false;
    }
    if (n === 1) box.querySelector('input[value="single"]').checked = true;
  }

  // ---------------------------------------------------------------- steps

  function stepOf(n) {
    return wz.steps.find((s) => s.n === n);
  }

  /** Checks the step's fields; returns {answers, problems} with answers merged in. */
  function collect(step) {
    const answers = { ...wz.answers };
    const problems = {};
    const raws = {};
    for (const key of step.fields) {
      const q = wz.questions[key];
      const r = readField(q);
      if (r.raw !== undefined) raws[key] = r.raw;
      try {
        const v = normalise(q, r.value === undefined ? null : r.value);
        // A required question left empty is not moved past: its message says what it needs.
        if (v === undefined && q.required) throw q.message;
        if (v === undefined) delete answers[key];
        else answers[key] = v;
      } catch (message) {
        problems[key] = message;
      }
    }
    for (const rule of wz.rules) {
      if (!step.fields.includes(rule.field) || problems[rule.field]) continue;
      if (ruleBroken(rule.id, answers)) problems[rule.field] = rule.message;
    }
    return { answers, problems, raws };
  }

  function showProblems(problems, summary) {
    const step = stepOf(wz.step);
    for (const key of step.fields) showFieldError(key, problems[key]);
    const keys = Object.keys(problems);
    $('wz-error').textContent = keys.length ? summary || 'Some answers need another look: see the messages under them.' : '';
    if (keys.length) {
      const box = document.querySelector(`.q-field[data-key="${keys[0]}"]`);
      const target = box && (box.querySelector('input[type="text"]') || box.querySelector('input[type="radio"]'));
      if (target) target.focus();
    }
  }

  async function save(step, answers) {
    const r = await api('/api/onboarding', {
      method: 'PUT',
      body: { step, answers, units: wz.units },
    });
    if (!r.success) return r;
    take(r.data);
    return r;
  }

  function take(view) {
    wz.step = view.step;
    wz.answers = view.answers || {};
    wz.units = view.units || {};
    wz.finished = view.finished === true;
    wz.resets = view.resets || null;
  }

  /** Moves to `to`, saving the step's answers first. `strict`: refuse on a wrong answer. */
  async function go(to, strict) {
    const step = stepOf(wz.step);
    const { answers, problems, raws } = collect(step);
    const bad = Object.keys(problems);
    if (bad.length && strict) {
      showProblems(problems);
      return false;
    }
    // Going back keeps what was typed in a wrong field, to be fixed later, and saves the rest.
    for (const key of step.fields) {
      if (problems[key]) {
        wz.draft[key] = raws[key] !== undefined ? raws[key] : wz.draft[key];
        if (wz.answers[key] !== undefined) answers[key] = wz.answers[key];
        else delete answers[key];
      } else {
        delete wz.draft[key];
      }
    }
    busy(true);
    const r = await save(to, answers);
    busy(false);
    if (!r.success) {
      const fields = r.error.fields || {};
      if (r.error.code === 'unauthorized') {
        showSignin('Your session ended: sign in again to go on. Nothing was lost.');
        return false;
      }
      showProblems(fields, r.error.message);
      if (!Object.keys(fields).length) $('wz-error').textContent = r.error.message;
      return false;
    }
    render();
    return true;
  }

  function busy(on) {
    for (const id of ['wz-back', 'wz-exit', 'wz-next']) $(id).disabled = on;
  }

  function render() {
    const step = stepOf(wz.step);
    const total = wz.steps.length;
    $('wz-count').textContent = `Step ${step.n} of ${total}: ${step.title}`;
    $('wz-bar').max = total;
    $('wz-bar').value = step.n;
    $('wz-title').textContent = step.title;
    $('wz-intro').textContent = step.intro;
    $('wz-intro').hidden = !step.intro;
    $('wz-error').textContent = '';
    const fields = $('wz-fields');
    fields.replaceChildren(...step.fields.map((k) => buildField(wz.questions[k])));
    const engines = $(fieldId('engines'));
    if (engines) {
      engines.addEventListener('input', fitPositions);
      fitPositions();
    }
    $('wz-dip').hidden = step.id !== 'dip';
    $('wz-pair').hidden = step.id !== 'pairing';
    $('wz-done').hidden = step.id !== 'done';
    $('wz-back').hidden = step.n === 1;
    $('wz-next').hidden = step.id === 'done';
    $('wz-exit').hidden = step.id === 'done';
    $('wz-next').textContent = step.n === total - 1 ? 'Finish' : step.n === 1 ? 'Start' : 'Next';
    if (step.id === 'dip') loadSwitches();
    if (step.id === 'pairing') loadPairing();
    if (step.id === 'done') showLimits();
    showResets();
    $('wz-status').textContent = wz.finished
      ? 'The wizard is finished: these answers set the engine alarms.'
      : 'Your answers are saved on the helm computer at every step.';
    $('wz-title').focus();
  }

  // ---------------------------------------------------------------- switches, pairing, limits

  async function loadSwitches() {
    const r = await api('/api/onboarding/dip');
    if (!r.success) {
      $('wz-error').textContent = r.error.message;
      return;
    }
    const d = r.data;
    const e = d.engine || {};
    const name = [e.manufacturer, e.model, e.year].filter((x) => x !== null && x !== undefined).join(' ');
    $('wz-dip-for').textContent = `For: ${name}${e.boat_name ? ` on ${e.boat_name}` : ''}`;
    for (const row of [1, 2]) {
      const box = $(`wz-dip-row${row}`);
      box.replaceChildren(
        ...d.switches
          .filter((s) => s.row === row)
          .map((s) => {
            const sw = el('div', { class: 'dip-switch', 'data-on': String(s.on), 'data-label': s.label });
            sw.append(el('span', { class: 'dip-state' }, s.on ? 'ON' : 'OFF'), el('span', { class: 'dip-slot' }), el('span', { class: 'dip-label' }, s.label));
            sw.querySelector('.dip-slot').append(el('span', { class: 'dip-lever' }));
            return sw;
          }),
      );
    }
    $('wz-dip-list').replaceChildren(
      ...d.switches.map((s) => {
        const tr = el('tr', { 'data-label': `${s.row}-${s.label}` });
        tr.append(el('td', {}, String(s.row)), el('th', { scope: 'row' }, s.label), el('td', {}, s.on ? 'ON' : 'OFF'), el('td', {}, s.reason));
        return tr;
      }),
    );
    const notes = $('wz-dip-notes');
    notes.replaceChildren(...(d.notes || []).map((n) => el('li', {}, n)));
    notes.hidden = !(d.notes || []).length;
  }

  async function loadPairing() {
    const r = await api('/api/onboarding/pairing');
    if (!r.success) {
      $('wz-error').textContent = r.error.message;
      return;
    }
    $('wz-pair-url').textContent = r.data.url;
    const id = /[?&]id=([^&]*)/.exec(r.data.url);
    $('wz-pair-id').textContent = id ? id[1] : '';
    $('wz-qr').src = `/api/onboarding/qr.svg?at=${Date.now()}`;
  }

  function limitRow(term, value) {
    const box = $('wz-limits');
    box.append(el('dt', {}, term), el('dd', {}, value));
  }

  function showLimits() {
    $('wz-limits').replaceChildren();
    const a = wz.answers;
    const v = (key) => {
      const q = wz.questions[key];
      const u = unitOf(q);
      return a[key] === undefined ? 'not answered' : `${shown(q, a[key])}${u ? (u.label.startsWith(':') ? '' : ' ') + u.label : ''}`;
    };
    limitRow('Engine', [a.manufacturer, a.model, a.year].filter((x) => x !== undefined).join(' '));
    limitRow('Overheat alarm above', v('max_coolant_f'));
    limitRow('Low oil pressure alarm at idle below', v('min_oil_idle_psi'));
    limitRow('Low oil pressure alarm at cruise below', v('min_oil_cruise_psi'));
    limitRow('Idle speed', v('idle_rpm'));
    limitRow('Wide-open-throttle range', `${v('wot_min_rpm')} to ${v('wot_max_rpm')}; over-revving alarm above ${v('wot_max_rpm')}`);
  }

  // ---------------------------------------------------------------- resets

  function showResets() {
    const r = wz.resets;
    $('wz-resets').hidden = !r;
    if (!r) return;
    $('wz-resets-count').textContent = `Resets used: ${r.used} of ${r.limit}.`;
    const warn = $('wz-reset-warning');
    warn.textContent = r.warning || '';
    warn.hidden = !r.warning;
  }

  async function reset() {
    $('wz-reset-error').textContent = '';
    const r = await api('/api/onboarding/reset', { method: 'POST', body: { confirm: true } });
    $('wz-reset-confirm').hidden = true;
    $('wz-reset-ask').hidden = false;
    if (!r.success) {
      if (r.error.code === 'no_resets_left') {
        $('wz-reset-refused-text').textContent = r.error.message;
        $('wz-reset-upgrade').hidden = !/Pro or Fleet/.test(r.error.message);
        $('wz-reset-refused').hidden = false;
      } else {
        $('wz-reset-error').textContent = r.error.message;
      }
      return;
    }
    wz.draft = {};
    await load();
    $('wz-reset-note').textContent = `The wizard starts again. Resets used: ${r.data.resets.used} of ${r.data.resets.limit}.`;
  }

  // ---------------------------------------------------------------- sign-in and start

  function showSignin(text, noOwner) {
    $('wz-form').hidden = true;
    $('wz-resets').hidden = true;
    $('wz-signin').hidden = false;
    $('wz-signin-text').textContent = text;
    $('wz-signin-form').hidden = noOwner === true;
    $('wz-no-owner').hidden = noOwner !== true;
    $('wz-status').textContent = '';
  }

  async function load() {
    const session = await api('/api/session');
    if (session.success && session.data.owner_exists === false) {
      showSignin('There is no owner account yet. Create it from the main menu first, then come back to the wizard.', true);
      return;
    }
    if (!session.success || session.data.authenticated !== true) {
      showSignin('The answers change the engine alarms, so only the owner saves them. Sign in to go on where you left off.');
      return;
    }
    const [qs, progress] = await Promise.all([api('/api/onboarding/questions'), api('/api/onboarding')]);
    if (!qs.success || !progress.success) {
      $('wz-status').textContent = (qs.success ? progress : qs).error.message;
      return;
    }
    wz.steps = qs.data.steps;
    wz.questions = Object.fromEntries(qs.data.questions.map((q) => [q.key, q]));
    wz.rules = qs.data.rules;
    take(progress.data);
    $('wz-signin').hidden = true;
    $('wz-form').hidden = false;
    render();
  }

  function start() {
    $('wz-form').addEventListener('submit', (e) => {
      e.preventDefault();
      go(Math.min(wz.step + 1, wz.steps.length), true);
    });
    $('wz-back').addEventListener('click', () => go(Math.max(wz.step - 1, 1), false));
    $('wz-exit').addEventListener('click', async () => {
      if (await go(wz.step, true)) window.location.assign('/');
    });
    $('wz-print').addEventListener('click', () => window.print());
    $('wz-regenerate').addEventListener('click', loadPairing);
    $('wz-reset').addEventListener('click', () => {
      $('wz-reset-refused').hidden = true;
      $('wz-reset-note').textContent = '';
      $('wz-reset-confirm').hidden = false;
      $('wz-reset-ask').hidden = true;
      $('wz-reset-yes').focus();
    });
    $('wz-reset-no').addEventListener('click', () => {
      $('wz-reset-confirm').hidden = true;
      $('wz-reset-ask').hidden = false;
      $('wz-reset').focus();
    });
    $('wz-reset-yes').addEventListener('click', reset);
    $('wz-signin-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const r = await api('/api/session', {
        method: 'POST',
        body: { username: $('wz-username').value.trim(), password: $('wz-password').value },
      });
      if (!r.success) {
        $('wz-signin-error').textContent = r.error.message;
        return;
      }
      $('wz-password').value = '';
      $('wz-signin-error').textContent = '';
      load();
    });
    load();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
