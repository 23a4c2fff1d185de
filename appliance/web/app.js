// d3kOS helm screen: shared script for every page.
//
// Loaded from <head> without `defer` so the theme is on <html> before the first paint (a
// white flash at night would cost the helmsman his night vision); everything else waits
// for the document. Plain ES2020, no libraries: the pages must work with nothing but d3kosd.
'use strict';

(() => {
  // ---------------------------------------------------------------- theme

  const THEME_KEY = 'd3kos-theme';
  const root = document.documentElement;
  const darkQuery = window.matchMedia ? window.matchMedia('(prefers-color-scheme: dark)') : null;

  function storedTheme() {
    try {
      const v = window.localStorage.getItem(THEME_KEY);
      return v === 'night' || v === 'day' ? v : null;
    } catch (_) {
      return null; // storage refused (private mode): follow the system
    }
  }

  function systemTheme() {
    return darkQuery && darkQuery.matches ? 'night' : 'day';
  }

  function currentTheme() {
    return storedTheme() || systemTheme();
  }

  function applyTheme(theme) {
    root.dataset.theme = theme;
    for (const b of document.querySelectorAll('[data-theme-toggle]')) {
      b.setAttribute('aria-pressed', theme === 'night' ? 'true' : 'false');
    }
  }

  function toggleTheme() {
    const next = currentTheme() === 'night' ? 'day' : 'night';
    try {
      window.localStorage.setItem(THEME_KEY, next);
    } catch (_) {
      // Not kept across pages, but still applied here.
    }
    applyTheme(next);
  }

  applyTheme(currentTheme());
  if (darkQuery && darkQuery.addEventListener) {
    darkQuery.addEventListener('change', () => {
      if (!storedTheme()) applyTheme(systemTheme());
    });
  }
  // Another tab or window changed the theme.
  window.addEventListener('storage', (e) => {
    if (e.key === THEME_KEY) applyTheme(currentTheme());
  });

  // ---------------------------------------------------------------- API

  const TIMEOUT_MS = 8000;

  /**
   * Calls the device's API and returns its envelope: `{success: true, data}` or
   * `{success: false, error: {code, message}}`. Never throws: a network failure or an
   * answer that is not an envelope becomes an error envelope with a message for a person.
   * `options.body`, when given, is sent as JSON; `options.raw` (a Blob or File) is sent as
   * it is. `options.timeout` overrides the wait in ms (0: wait as long as it takes, for
   * work such as a backup that takes minutes on a large boat log).
   */
  async function api(path, options = {}) {
    const init = {
      method: options.method || 'GET',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { Accept: 'application/json' },
    };
    if (options.body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(options.body);
    } else if (options.raw !== undefined) {
      init.headers['Content-Type'] = 'application/octet-stream';
      init.body = options.raw;
    }
    const wait = options.timeout === undefined ? TIMEOUT_MS : options.timeout;
    const controller = typeof AbortController === 'function' && wait > 0 ? new AbortController() : null;
    let timer = null;
    if (controller) {
      init.signal = controller.signal;
      timer = setTimeout(() => controller.abort(), wait);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (_) {
      if (timer) clearTimeout(timer);
      return failure('network', 'The helm computer did not answer. Check the connection and try again.');
    }
    let env = null;
    try {
      env = await res.json();
    } catch (_) {
      env = null;
    } finally {
      if (timer) clearTimeout(timer);
    }
    if (!env || typeof env !== 'object' || typeof env.success !== 'boolean') {
      return failure('bad_response', `The helm computer gave an unexpected answer (HTTP ${res.status}).`);
    }
    if (!env.success) {
      const err = env.error && typeof env.error === 'object' ? env.error : {};
      env.error = {
        fields: err.fields && typeof err.fields === 'object' ? err.fields : undefined,
        code: typeof err.code === 'string' ? err.code : 'unknown',
        message:
          typeof err.message === 'string' && err.message
            ? err.message
            : `The helm computer refused the request (HTTP ${res.status}).`,
      };
    } else if (env.data === undefined || env.data === null) {
      env.data = {};
    }
    return env;
  }

  function failure(code, message) {
    return { success: false, error: { code, message } };
  }

  // ---------------------------------------------------------------- formatting

  const NA = 'not available';

  function isNum(v) {
    return typeof v === 'number' && Number.isFinite(v);
  }

  /** Text for any value; null, undefined, NaN and empty strings are "not available". */
  function text(v) {
    if (v === null || v === undefined) return NA;
    if (typeof v === 'number') return isNum(v) ? String(v) : NA;
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    const s = String(v).trim();
    return s ? s : NA;
  }

  /** 1234 → "1.2 KB", 1.2e9 → "1.2 GB" (powers of 1000, as disks are sold). */
  function formatBytes(n) {
    if (!isNum(n) || n < 0) return NA;
    const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
    let i = 0;
    let v = n;
    while (v >= 1000 && i < units.length - 1) {
      v /= 1000;
      i += 1;
    }
    const digits = i === 0 ? 0 : v < 10 ? 1 : v < 100 ? 1 : 0;
    return `${v.toFixed(digits)} ${units[i]}`;
  }

  /** 273600 → "3 d 4 h", 4500 → "1 h 15 min", 59 → "59 s". */
  function formatDuration(seconds) {
    if (!isNum(seconds) || seconds < 0) return NA;
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d > 0) return `${d} d ${h} h`;
    if (h > 0) return `${h} h ${m} min`;
    if (m > 0) return `${m} min`;
    return `${s} s`;
  }

  function formatNumber(v, digits, unit) {
    if (!isNum(v)) return NA;
    const n = v.toFixed(digits);
    return unit ? `${n} ${unit}` : n;
  }

  function formatPercent(v) {
    return formatNumber(v, 0, '%');
  }

  function formatTemperature(v) {
    return formatNumber(v, 1, '°C');
  }

  /** An RFC 3339 time as "2026-11-29 10:00 UTC"; other text as it is. */
  function formatDate(iso) {
    if (typeof iso !== 'string' || !iso.trim()) return NA;
    const t = Date.parse(iso);
    if (!Number.isFinite(t)) return iso.trim();
    const d = new Date(t);
    const pad = (x) => String(x).padStart(2, '0');
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
  }

  // ---------------------------------------------------------------- DOM helpers

  const $ = (id) => document.getElementById(id);

  function setText(id, value) {
    const el = $(id);
    if (el) el.textContent = value;
  }

  function setMessage(id, message) {
    const el = $(id);
    if (!el) return;
    const next = message || '';
    // Rewriting identical text would make screen readers repeat it every refresh.
    if (el.textContent !== next) el.textContent = next;
  }

  function cell(tag, value, className) {
    const c = document.createElement(tag);
    c.textContent = value;
    if (className) c.className = className;
    if (tag === 'th') c.scope = 'row';
    return c;
  }

  /** Fills a <tbody> with rows of [header, value, class] triples; an empty list says so. */
  function fillRows(id, rows, columns, emptyText) {
    const body = $(id);
    if (!body) return;
    const fresh = [];
    if (!rows.length) {
      const tr = document.createElement('tr');
      const td = cell('td', emptyText);
      td.colSpan = columns;
      tr.append(td);
      fresh.push(tr);
    }
    for (const r of rows) {
      const tr = document.createElement('tr');
      tr.append(cell('th', r[0]));
      for (const v of r.slice(1)) {
        if (v && typeof v === 'object') tr.append(cell('td', v.text, v.className));
        else tr.append(cell('td', v));
      }
      fresh.push(tr);
    }
    body.replaceChildren(...fresh);
  }

  /** Runs `fn` now and every `ms`, skipping turns while the page is hidden or a turn is running. */
  function every(ms, fn) {
    let busy = false;
    const tick = async () => {
      if (busy || document.hidden) return;
      busy = true;
      try {
        await fn();
      } finally {
        busy = false;
      }
    };
    tick();
    setInterval(tick, ms);
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) tick();
    });
  }

  const HEALTH_EVERY_MS = 5000;

  // ---------------------------------------------------------------- main menu

  /** The helm screen's first screen until the owner exists: the setup code and Wi-Fi. */
  async function firstUse() {
    const r = await api('/api/helm/first-use');
    const box = $('first-use');
    if (!box) return;
    const problems = r.success && Array.isArray(r.data.problems) ? r.data.problems : [];
    $('start-problem-list').replaceChildren(...problems.map((p) => {
      const li = document.createElement('li');
      li.textContent = String(p);
      return li;
    }));
    $('start-problems').hidden = problems.length === 0;
    if (!r.success || r.data.owner_exists || !r.data.setup_code) {
      box.hidden = true;
      return;
    }
    // Shown until the owner exists, which may happen from a phone: look again until then.
    setTimeout(firstUse, 5000);
    setText('fu-code', r.data.setup_code);
    const w = r.data.setup_wifi;
    const on = Boolean(w && w.access_point === 'active');
    $('fu-wifi-step').hidden = !on;
    $('fu-qr').hidden = !on;
    if (on) {
      setText('fu-ssid', w.ssid);
      setText('fu-pass', w.passphrase);
      $('fu-qr').src = '/api/setup/wifi/qr.svg';
    }
    box.hidden = false;
  }

  async function homePage() {
    firstUse();
    const r = await api('/api/version');
    if (r.success) {
      const v = r.data;
      const board = typeof v.board === 'string' && v.board ? ` on ${v.board}` : '';
      setText('home-version', `${text(v.version)}${board}`);
      setMessage('home-error', '');
    } else {
      setText('home-version', NA);
      setMessage('home-error', r.error.message);
    }
  }

  // ---------------------------------------------------------------- settings

  const FEATURE_NAMES = {
    voice: 'Voice control',
    camera: 'Camera',
    cloud_sync: 'Cloud sync',
    multi_boat: 'Several boats',
  };

  function featureName(key) {
    if (FEATURE_NAMES[key]) return FEATURE_NAMES[key];
    const s = String(key).replace(/_/g, ' ');
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  function onOff(v) {
    if (v === true) return { text: 'On', className: 'state-on' };
    if (v === false) return { text: 'Off', className: 'state-off' };
    return { text: NA };
  }

  async function loadVersion() {
    const r = await api('/api/version');
    if (r.success) {
      const v = r.data;
      setText('sw-version', text(v.version));
      setText('sw-build-date', formatDate(v.build_date));
      setText('sw-board', text(v.board));
      setMessage('software-error', '');
    } else {
      for (const id of ['sw-version', 'sw-build-date', 'sw-board']) setText(id, NA);
      setMessage('software-error', r.error.message);
    }
  }

  function limitText(v) {
    if (v === null) return 'unlimited';
    return isNum(v) ? String(v) : NA;
  }

  async function loadLicence() {
    const r = await api('/license/info');
    if (r.success) {
      const l = r.data;
      const name = typeof l.tier_name === 'string' && l.tier_name ? l.tier_name : null;
      const tier = isNum(l.tier) ? `tier ${l.tier}` : null;
      setText('lic-tier', name && tier ? `${name} (${tier})` : text(name || tier));
      setText('lic-installation', text(l.installation_id));
      const resets = l.onboarding_resets && typeof l.onboarding_resets === 'object' ? l.onboarding_resets : {};
      setText('lic-resets-used', isNum(resets.used) ? String(resets.used) : NA);
      setText('lic-resets-limit', resets.limit === undefined ? NA : limitText(resets.limit));
      setText('lic-resets-remaining', resets.remaining === undefined ? NA : limitText(resets.remaining));
      const features = l.features && typeof l.features === 'object' ? l.features : {};
      fillRows(
        'lic-features',
        Object.keys(features).map((k) => [featureName(k), onOff(features[k])]),
        2,
        'No features listed.',
      );
      setMessage('licence-error', '');
    } else {
      for (const id of ['lic-tier', 'lic-installation', 'lic-resets-used', 'lic-resets-limit', 'lic-resets-remaining']) {
        setText(id, NA);
      }
      fillRows('lic-features', [], 2, NA);
      setMessage('licence-error', r.error.message);
    }
  }

  const THROTTLE_NAMES = [
    ['under_voltage', 'Under-voltage now'],
    ['frequency_capped', 'CPU speed capped now'],
    ['throttled', 'Throttled now'],
    ['soft_temp_limit', 'Soft temperature limit now'],
    ['occurred_since_boot', 'Any of these since start-up'],
  ];

  function yesNo(v) {
    if (v === true) return { text: 'Yes', className: 'state-bad' };
    if (v === false) return { text: 'No', className: 'state-off' };
    return { text: NA };
  }

  function memoryText(m) {
    if (!m || typeof m !== 'object') return NA;
    const pct = formatPercent(m.used_percent);
    if (pct === NA) return NA;
    if (isNum(m.total_bytes) && isNum(m.available_bytes)) {
      return `${pct} (${formatBytes(m.total_bytes - m.available_bytes)} of ${formatBytes(m.total_bytes)})`;
    }
    return pct;
  }

  function serviceState(s) {
    const active = typeof s.active_state === 'string' && s.active_state ? s.active_state : null;
    const sub = typeof s.sub_state === 'string' && s.sub_state ? s.sub_state : null;
    if (!active) return { text: NA };
    const t = sub ? `${active} (${sub})` : active;
    const className = active === 'active' ? 'state-on' : active === 'failed' ? 'state-bad' : 'state-off';
    return { text: t, className };
  }

  const HEALTH_IDS = ['hl-cpu-usage', 'hl-cpu-temp', 'hl-cpu-cores', 'hl-memory', 'hl-uptime', 'hl-sampled'];

  async function loadHealth() {
    const r = await api('/api/health');
    if (!r.success) {
      for (const id of HEALTH_IDS) setText(id, NA);
      fillRows('hl-disks', [], 3, NA);
      fillRows('hl-throttling', [], 2, NA);
      fillRows('hl-services', [], 2, NA);
      showProblems([]);
      setMessage('health-error', r.error.message);
      return;
    }
    const h = r.data;
    const cpu = h.cpu && typeof h.cpu === 'object' ? h.cpu : {};
    setText('hl-cpu-usage', formatNumber(cpu.usage_percent, 1, '%'));
    setText('hl-cpu-temp', formatTemperature(cpu.temperature_c));
    setText('hl-cpu-cores', isNum(cpu.cores) && cpu.cores > 0 ? String(cpu.cores) : NA);
    setText('hl-memory', memoryText(h.memory));
    setText('hl-uptime', formatDuration(h.uptime_seconds));
    setText('hl-sampled', formatDate(h.sampled_at));

    const disks = Array.isArray(h.disks) ? h.disks : [];
    fillRows(
      'hl-disks',
      disks.map((d) => {
        const free = formatBytes(d.free_bytes);
        const pct =
          isNum(d.free_bytes) && isNum(d.total_bytes) && d.total_bytes > 0
            ? ` (${Math.round((100 * d.free_bytes) / d.total_bytes)} % free)`
            : '';
        return [text(d.mount), free === NA ? NA : free + pct, formatBytes(d.total_bytes)];
      }),
      3,
      'No disks reported.',
    );

    const t = h.throttling && typeof h.throttling === 'object' ? h.throttling : null;
    if (t) {
      const rows = THROTTLE_NAMES.map(([k, label]) => [label, yesNo(t[k])]);
      rows.push(['Raw flags', text(t.raw)]);
      fillRows('hl-throttling', rows, 2, NA);
    } else {
      fillRows('hl-throttling', [], 2, `${NA} on this board`);
    }

    const services = Array.isArray(h.services) ? h.services : [];
    fillRows(
      'hl-services',
      services.map((s) => [text(s.name), serviceState(s)]),
      2,
      'No services watched.',
    );
    showProblems(Array.isArray(h.problems) ? h.problems : []);
    setMessage('health-error', '');
  }

  function showProblems(list) {
    const box = $('hl-problems-box');
    const ul = $('hl-problems');
    if (!box || !ul) return;
    const items = list.filter((p) => typeof p === 'string' && p).map((p) => {
      const li = document.createElement('li');
      li.textContent = p;
      return li;
    });
    ul.replaceChildren(...items);
    box.hidden = items.length === 0;
  }

  // ---- owner account

  function showOwnerView(view, username) {
    $('setup-form').hidden = view !== 'setup';
    $('signin-form').hidden = view !== 'signin';
    $('signed-in').hidden = view !== 'signed-in';
    const status = {
      setup: 'No owner account exists yet.',
      signin: 'An owner account exists. Sign in to change settings.',
      'signed-in': '',
      unknown: 'The state of the owner account is not available.',
    }[view];
    const p = $('owner-status');
    p.textContent = status;
    p.hidden = !status;
    if (view === 'signed-in') setText('signed-in-user', text(username));
  }

  async function loadSession() {
    const r = await api('/api/session');
    if (!r.success) {
      showOwnerView('unknown');
      setMessage('owner-error', r.error.message);
      return null;
    }
    const s = r.data;
    setMessage('owner-error', '');
    if (s.owner_exists === false) showOwnerView('setup');
    else if (s.authenticated === true) showOwnerView('signed-in', s.username);
    else showOwnerView('signin');
    return s;
  }

  /** Marks the fields and shows the message; focus goes to the first bad field. */
  function formError(message, fields = []) {
    setMessage('owner-note', '');
    setMessage('owner-error', message);
    for (const el of document.querySelectorAll('#main input[aria-invalid]')) el.removeAttribute('aria-invalid');
    for (const f of fields) f.setAttribute('aria-invalid', 'true');
    if (fields[0]) fields[0].focus();
  }

  async function submitting(form, busyLabel, work) {
    const button = form.querySelector('button[type="submit"]');
    const label = button.textContent;
    button.disabled = true;
    button.textContent = busyLabel;
    try {
      await work();
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  function ownerForms() {
    const setup = $('setup-form');
    const signin = $('signin-form');
    const signout = $('signout-button');

    setup.addEventListener('submit', (e) => {
      e.preventDefault();
      const code = $('setup-code');
      const user = $('setup-username');
      const pw = $('setup-password');
      const pw2 = $('setup-password2');
      if (!code.value.trim()) return formError('Enter the setup code shown on the helm display.', [code]);
      if (!user.value.trim()) return formError('Choose a username.', [user]);
      if (pw.value.length < 8) return formError('Choose a password of at least 8 characters.', [pw]);
      if (pw.value !== pw2.value) return formError('The two passwords are not the same.', [pw2]);
      submitting(setup, 'Creating…', async () => {
        const r = await api('/api/setup/owner', {
          method: 'POST',
          body: { setup_code: code.value.trim(), username: user.value.trim(), password: pw.value },
        });
        if (!r.success) return formError(r.error.message);
        pw.value = '';
        pw2.value = '';
        code.value = '';
        formError('');
        await afterSignIn(r.data.username, 'Owner account created.');
      });
    });

    signin.addEventListener('submit', (e) => {
      e.preventDefault();
      const user = $('signin-username');
      const pw = $('signin-password');
      if (!user.value.trim()) return formError('Enter your username.', [user]);
      if (!pw.value) return formError('Enter your password.', [pw]);
      submitting(signin, 'Signing in…', async () => {
        const r = await api('/api/session', {
          method: 'POST',
          body: { username: user.value.trim(), password: pw.value },
        });
        if (!r.success) return formError(r.error.message, [pw]);
        pw.value = '';
        formError('');
        await afterSignIn(r.data.username, '');
      });
    });

    signout.addEventListener('click', async () => {
      signout.disabled = true;
      try {
        const r = await api('/api/session', { method: 'DELETE' });
        if (!r.success) {
          formError(r.error.message);
          return;
        }
        formError('');
        await loadSession();
        loadBackups();
        loadExports();
        loadUpdate();
        setMessage('owner-note', 'Signed out.');
        const u = $('signin-username');
        if (u && !$('signin-form').hidden) u.focus();
      } finally {
        signout.disabled = false;
      }
    });
  }

  async function afterSignIn(username, note) {
    const s = await loadSession();
    const who = (s && s.username) || username;
    setMessage('owner-note', `${note ? note + ' ' : ''}Signed in as ${text(who)}.`);
    const b = $('signout-button');
    if (b && !$('signed-in').hidden) b.focus();
    // What needs an account (live data, backups, exports) may answer now.
    loadHealth();
    loadBackups();
    loadExports(true);
    loadUpdate();
  }

  // ---- software update

  const SLOT_STATES = { good: 'has run healthy', installed: 'installed, not yet tried', writing: 'being written', bad: 'did not come up healthy' };
  const OUTCOMES = { pending: 'waiting for its try', committed: 'kept', 'rolled-back': 'not kept' };

  function updateMessage(error, note) {
    setMessage('update-error', error || '');
    setMessage('update-note', note || '');
  }

  function slotText(slot, s) {
    if (!s) return `slot ${slot.toUpperCase()}: nothing recorded`;
    return `${text(s.version)} in slot ${slot.toUpperCase()} (${SLOT_STATES[s.state] || text(s.state)})`;
  }

  async function loadUpdate() {
    const signedIn = !$('signed-in').hidden;
    $('up-form').hidden = !signedIn;
    $('up-switch-form').hidden = !signedIn;
    $('up-factory-form').hidden = !signedIn;
    $('update-signed-out').hidden = signedIn;
    const r = await api('/api/update/status');
    if (!r.success) {
      for (const id of ['up-running', 'up-other', 'up-last']) setText(id, '—');
      updateMessage(r.error.message);
      return;
    }
    const d = r.data;
    const running = typeof d.running === 'string' ? d.running : '';
    const other = running === 'a' ? 'b' : 'a';
    setText('up-running', running ? slotText(running, d[running]) : 'unknown');
    setText('up-other', running ? slotText(other, d[other]) : 'unknown');
    // Going back needs a release in the other slot that has run healthy.
    $('up-switch').disabled = !(running && d[other] && d[other].state === 'good' && d.committed === running);
    if (signedIn) loadRestoreBackups();
    const a = d.last_attempt;
    setText(
      'up-last',
      a ? `${text(a.version)} (from ${text(a.from_version)}): ${OUTCOMES[a.outcome] || text(a.outcome)}${a.reason ? ` — ${text(a.reason)}` : ''}` : 'none yet',
    );
  }

  async function installUpdate(file) {
    const box = $('up-progress-box');
    const bar = $('up-progress');
    setText('up-progress-label', 'Backing up your data…');
    bar.value = 0;
    box.hidden = false;
    updateMessage('', '');
    const poll = setInterval(async () => {
      const s = await api('/api/update/status');
      const run = s.success && s.data.installing;
      if (!run) return;
      if (run.phase === 'installing') {
        setText('up-progress-label', 'Writing the update…');
        if (isNum(run.total) && run.total > 0) bar.value = Math.min(100, Math.round((100 * run.written) / run.total));
      }
    }, 1000);
    try {
      const r = await api('/api/update/install', { method: 'POST', raw: file, timeout: 0 });
      if (!r.success) updateMessage(r.error.message);
      else
        updateMessage(
          '',
          `${text(r.data.product)} ${text(r.data.version)} is installed in slot ${text(r.data.slot).toUpperCase()}, after backup ${text(r.data.backup)}. The helm computer restarts now to try it.`,
        );
    } finally {
      clearInterval(poll);
      box.hidden = true;
    }
    await loadUpdate();
    // The backup taken first is listed with the others.
    loadBackups();
  }

  /** The backups a factory restore can put back, newest first. */
  async function loadRestoreBackups() {
    const r = await api('/api/backup/list');
    if (!r.success) return;
    const select = $('up-factory-backup');
    const keep = select.value;
    const list = Array.isArray(r.data.backups) ? r.data.backups : [];
    const options = list.map((b) => {
      const o = document.createElement('option');
      o.value = text(b.id);
      o.textContent = `Restore backup ${text(b.id)} (${KIND_NAMES[b.kind] || text(b.kind)})`;
      return o;
    });
    select.replaceChildren(select.options[0], ...options);
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  }

  /** Asks for a switch or a factory restore; the device restarts when it is arranged. */
  async function slotAction(path, body, busy) {
    const box = $('up-progress-box');
    const bar = $('up-progress');
    setText('up-progress-label', busy);
    bar.removeAttribute('value');
    box.hidden = false;
    updateMessage('', '');
    try {
      const r = await api(path, { method: 'POST', body, timeout: 0 });
      if (!r.success) updateMessage(r.error.message);
      else {
        const restored = r.data.restored ? ` Backup ${text(r.data.restored)} was restored first.` : '';
        updateMessage('', `${text(r.data.version)} in slot ${text(r.data.slot).toUpperCase()} starts next.${restored} The helm computer restarts now to try it.`);
      }
    } finally {
      box.hidden = true;
      bar.value = 0;
    }
    await loadUpdate();
  }

  function updateForms() {
    const switchForm = $('up-switch-form');
    switchForm.addEventListener('submit', (e) => {
      e.preventDefault();
      submitting(switchForm, 'Going back…', () => slotAction('/api/update/switch', {}, 'Arranging the previous version…'));
    });
    const factory = $('up-factory-form');
    factory.addEventListener('submit', (e) => {
      e.preventDefault();
      const backup = $('up-factory-backup').value;
      submitting(factory, 'Restoring…', () =>
        slotAction('/api/update/factory-restore', backup ? { backup } : {}, backup ? 'Restoring your data, then copying this release…' : 'Copying this release into the other slot…'),
      );
    });
    const form = $('up-form');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const file = $('up-file').files && $('up-file').files[0];
      if (!file) return updateMessage('Choose an update bundle first.');
      submitting(form, 'Installing…', async () => {
        await installUpdate(file);
        $('up-file').value = '';
      });
    });
  }

  // ---- backup & restore

  const KIND_NAMES = { manual: 'Made by hand', scheduled: 'Automatic', 'pre-restore': 'Before a restore', 'pre-update': 'Before an update' };
  const AUTO_NAMES = { off: 'Off', daily: 'Every day', weekly: 'Every Sunday' };
  let backupBusy = false;

  /** The destination chosen in "Backups on": `data` or `usb:UUID`. */
  function destination() {
    const sel = $('bk-dest');
    return sel && sel.value ? sel.value : 'data';
  }

  function at(path) {
    const d = destination();
    return d === 'data' ? path : `${path}${path.includes('?') ? '&' : '?'}destination=${encodeURIComponent(d)}`;
  }

  async function loadDestinations() {
    const r = await api('/api/backup/destinations');
    if (!r.success || !Array.isArray(r.data.destinations)) return;
    const sel = $('bk-dest');
    const chosen = sel.value;
    const options = r.data.destinations.map((d) => {
      const o = document.createElement('option');
      o.value = text(d.id);
      o.textContent = `${text(d.name)}: ${formatBytes(d.free_bytes)} free${d.read_only ? ' (read-only)' : ''}`;
      return o;
    });
    sel.replaceChildren(...options);
    sel.value = options.some((o) => o.value === chosen) ? chosen : 'data';
  }

  function backupMessage(error, note) {
    setMessage('backup-error', error || '');
    setMessage('backup-note', note || '');
  }

  function lastText(last) {
    if (!last || typeof last !== 'object') return 'None yet';
    const when = formatDate(last.time);
    if (last.ok === true) return `${when}: ${text(last.id)} (${formatBytes(last.size)})`;
    return `${when}: failed: ${text(last.error)}`;
  }

  function checkedText(b) {
    if (b.verified === true) return { text: 'Yes' };
    if (b.verified === false) return { text: `No: ${text(b.problem)}`, className: 'bad' };
    return { text: 'Not yet' };
  }

  function actionButton(label, name, handler) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary';
    b.textContent = label;
    b.setAttribute('aria-label', `${label} ${name}`);
    b.addEventListener('click', handler);
    return b;
  }

  function backupRow(b) {
    const tr = document.createElement('tr');
    const name = formatDate(b.created);
    tr.append(cell('th', name));
    tr.append(cell('td', KIND_NAMES[b.kind] || text(b.kind)));
    tr.append(cell('td', formatBytes(b.size)));
    tr.append(cell('td', isNum(b.files) ? String(b.files) : NA));
    const c = checkedText(b);
    tr.append(cell('td', c.text, c.className));
    const td = document.createElement('td');
    const box = document.createElement('div');
    box.className = 'actions';
    const download = document.createElement('a');
    download.className = 'button secondary';
    download.href = at(`/api/backup/${encodeURIComponent(b.id)}/download`);
    download.textContent = 'Download';
    download.setAttribute('aria-label', `Download the backup of ${name}`);
    box.append(
      actionButton('Check', `the backup of ${name}`, () => verifyBackup(b)),
      download,
      actionButton('Restore', `the backup of ${name}`, () => confirmRestore(b)),
      actionButton('Delete', `the backup of ${name}`, () => deleteBackup(b)),
    );
    td.append(box);
    tr.append(td);
    return tr;
  }

  async function loadBackups() {
    const signedIn = !$('signed-in').hidden;
    $('backup-box').hidden = !signedIn;
    $('backup-signed-out').hidden = signedIn;
    if (!signedIn) return;
    await loadDestinations();
    const r = await api(at('/api/backup/list'));
    if (!r.success) {
      backupMessage(r.error.message);
      return;
    }
    const d = r.data;
    setText('bk-last', lastText(d.last));
    const st = d.settings && typeof d.settings === 'object' ? d.settings : {};
    setText('bk-auto', st.auto === 'off' ? 'Off' : `${AUTO_NAMES[st.auto] || text(st.auto)} at ${text(st.hour)}:00 local time, keeping ${text(st.keep)}`);
    setText('bk-free', formatBytes(d.free_bytes));
    if (!$('bk-settings-form').contains(document.activeElement)) {
      if (st.auto) $('bk-auto-select').value = st.auto;
      if (isNum(st.hour)) $('bk-hour').value = String(st.hour);
      if (isNum(st.keep)) $('bk-keep').value = String(st.keep);
    }
    const list = Array.isArray(d.backups) ? d.backups : [];
    const body = $('bk-list');
    if (!list.length) {
      const tr = document.createElement('tr');
      const td = cell('td', 'No backups yet.');
      td.colSpan = 6;
      tr.append(td);
      body.replaceChildren(tr);
    } else {
      body.replaceChildren(...list.map(backupRow));
    }
  }

  /** Runs a long backup job, showing its progress from /api/backup/status meanwhile. */
  async function backupJob(label, call) {
    if (backupBusy) return null;
    backupBusy = true;
    const box = $('bk-progress-box');
    const bar = $('bk-progress');
    const create = $('bk-create');
    create.disabled = true;
    setText('bk-progress-label', label);
    bar.value = 0;
    box.hidden = false;
    backupMessage('', '');
    const poll = setInterval(async () => {
      const s = await api('/api/backup/status');
      const run = s.success && s.data.running;
      if (run && isNum(run.total_bytes) && run.total_bytes > 0) {
        bar.value = Math.min(100, Math.round((100 * run.done_bytes) / run.total_bytes));
      }
    }, 500);
    try {
      return await call();
    } finally {
      clearInterval(poll);
      box.hidden = true;
      create.disabled = false;
      backupBusy = false;
    }
  }

  async function createBackup() {
    const r = await backupJob('Making a backup…', () => api(at('/api/backup/create'), { method: 'POST', timeout: 0 }));
    if (!r) return;
    if (!r.success) backupMessage(r.error.message);
    else backupMessage('', `Backup ${r.data.id} made: ${r.data.files} files, ${formatBytes(r.data.size)}.`);
    await loadBackups();
  }

  async function verifyBackup(b) {
    const r = await backupJob('Checking the backup…', () => api('/api/backup/verify', { method: 'POST', body: { id: b.id, destination: destination() }, timeout: 0 }));
    if (!r) return;
    if (!r.success) backupMessage(r.error.message);
    else backupMessage('', `The backup of ${formatDate(b.created)} checks out: ${r.data.files === 1 ? 'its file matches' : `all ${r.data.files} files match`}.`);
    await loadBackups();
  }

  async function deleteBackup(b) {
    const r = await api(at(`/api/backup/${encodeURIComponent(b.id)}`), { method: 'DELETE' });
    if (!r.success) backupMessage(r.error.message);
    else backupMessage('', `The backup of ${formatDate(b.created)} was deleted.`);
    await loadBackups();
  }

  let restoreTarget = null;
  let restoreOpener = null;

  function confirmRestore(b) {
    restoreTarget = b;
    restoreOpener = document.activeElement;
    const items = b.items && typeof b.items === 'object' ? Object.keys(b.items).join(', ') : '';
    setText(
      'bk-confirm-text',
      `This replaces all of the boat's data on this device (${items || 'every file'}) with the backup made ${formatDate(b.created)}: ${isNum(b.files) ? b.files : NA} files, ${formatBytes(b.total_bytes)}. ` +
        'What is there now is first kept as a backup of its own, so this can be undone. The owner account and the installation id stay as they are.',
    );
    const dlg = $('bk-confirm');
    if (typeof dlg.showModal === 'function') dlg.showModal();
    else dlg.setAttribute('open', '');
    $('bk-confirm-no').focus();
  }

  function closeConfirm() {
    const dlg = $('bk-confirm');
    if (typeof dlg.close === 'function') dlg.close();
    else dlg.removeAttribute('open');
    if (restoreOpener && restoreOpener.focus) restoreOpener.focus();
  }

  async function restoreBackup() {
    const b = restoreTarget;
    closeConfirm();
    if (!b) return;
    const r = await backupJob('Restoring…', () => api('/api/backup/restore', { method: 'POST', body: { id: b.id, destination: destination() }, timeout: 0 }));
    if (!r) return;
    if (!r.success) backupMessage(r.error.message);
    else {
      const problems = Array.isArray(r.data.problems) && r.data.problems.length ? ` Note: ${r.data.problems.join(' ')}` : '';
      backupMessage('', `Restored the backup of ${formatDate(b.created)}. The data it replaced is kept as backup ${text(r.data.pre_restore)}.${problems}`);
    }
    await loadBackups();
    loadLicence();
  }

  function backupForms() {
    $('bk-create').addEventListener('click', createBackup);
    $('bk-dest').addEventListener('change', loadBackups);
    $('bk-confirm-yes').addEventListener('click', restoreBackup);
    $('bk-confirm-no').addEventListener('click', closeConfirm);
    $('bk-confirm').addEventListener('cancel', () => {
      if (restoreOpener && restoreOpener.focus) setTimeout(() => restoreOpener.focus(), 0);
    });
    const settings = $('bk-settings-form');
    settings.addEventListener('submit', (e) => {
      e.preventDefault();
      const hour = Number($('bk-hour').value);
      const keep = Number($('bk-keep').value);
      if (!Number.isInteger(hour) || hour < 0 || hour > 23) {
        $('bk-hour').setAttribute('aria-invalid', 'true');
        return backupMessage('Choose an hour from 0 to 23.');
      }
      if (!Number.isInteger(keep) || keep < 1 || keep > 100) {
        $('bk-keep').setAttribute('aria-invalid', 'true');
        return backupMessage('Keep 1 to 100 backups.');
      }
      $('bk-hour').removeAttribute('aria-invalid');
      $('bk-keep').removeAttribute('aria-invalid');
      submitting(settings, 'Saving…', async () => {
        const r = await api('/api/backup/settings', { method: 'PUT', body: { auto: $('bk-auto-select').value, hour, keep } });
        if (!r.success) backupMessage(r.error.message);
        else backupMessage('', 'Backup settings saved.');
        await loadBackups();
      });
    });
    const upload = $('bk-upload-form');
    upload.addEventListener('submit', (e) => {
      e.preventDefault();
      const file = $('bk-file').files && $('bk-file').files[0];
      if (!file) return backupMessage('Choose a backup file first.');
      submitting(upload, 'Uploading…', async () => {
        const r = await api('/api/backup/upload', { method: 'POST', raw: file, timeout: 0 });
        if (!r.success) backupMessage(r.error.message);
        else backupMessage('', `Backup ${r.data.id} uploaded and checked: ${r.data.files} files.`);
        $('bk-file').value = '';
        await loadBackups();
      });
    });
  }

  // ---- exports

  const EXPORT_BUSY_MS = 2000;
  const EXPORT_IDLE_MS = 15000;
  const EXPORT_DESTINATIONS_MS = 10000;
  let exportTimer = null;
  let exportSeq = 0;
  let exportFailedToLoad = false;
  let exportDestinationsAt = 0;
  /** Destination names by id, as /api/export/destinations gives them. */
  let exportNames = {};
  /** The job queued from this page, followed until it is finished or has failed. */
  let exportWatch = null;

  function exportMessage(error, note) {
    setMessage('export-error', error || '');
    setMessage('export-note', note || '');
  }

  /** Milliseconds since 1970 UTC as "2026-11-29 10:00 UTC". */
  function formatMs(ms) {
    if (!isNum(ms) || Math.abs(ms) > 8.64e15) return NA;
    return formatDate(new Date(ms).toISOString());
  }

  function destinationName(id) {
    if (typeof id !== 'string' || !id) return NA;
    if (id === 'device') return 'This device';
    if (exportNames[id]) return exportNames[id];
    if (id.startsWith('usb:')) return `USB drive ${id.slice(4)}`;
    if (id.startsWith('upload:')) return `Upload: ${id.slice(7)}`;
    return id;
  }

  function jobWhat(j) {
    const w = j.what && typeof j.what === 'object' ? j.what : {};
    if (w.type === 'boatlog_csv') {
      const from = isNum(w.from) ? ` from ${formatMs(w.from)}` : ', all entries';
      const to = isNum(w.to) ? ` until ${formatMs(w.to)}` : '';
      return `Boat log (CSV)${from}${to}`;
    }
    if (w.type === 'backup') return `Backup ${text(w.id)}`;
    return text(w.type);
  }

  function tookText(ms) {
    if (!isNum(ms) || ms < 0) return NA;
    if (ms < 1000) return 'under 1 s';
    return formatDuration(ms / 1000);
  }

  function nextAttemptText(ms) {
    if (!isNum(ms)) return 'As soon as the worker is free';
    const wait = ms - Date.now();
    if (wait <= 0) return 'Now';
    return `${formatMs(ms)} (in ${formatDuration(Math.ceil(wait / 1000))})`;
  }

  function countText(v) {
    return isNum(v) ? String(v) : NA;
  }

  async function loadExportDestinations() {
    const r = await api('/api/export/destinations');
    if (!r.success || !Array.isArray(r.data)) return;
    const list = r.data.filter((d) => d && typeof d.id === 'string' && d.id);
    if (!list.length) return;
    exportDestinationsAt = Date.now();
    exportNames = {};
    for (const d of list) exportNames[d.id] = text(d.name);
    const label = (d) => (isNum(d.free_bytes) ? `${text(d.name)}: ${formatBytes(d.free_bytes)} free` : text(d.name));
    const sel = $('ex-dest');
    const same = list.length === sel.options.length && list.every((d, i) => sel.options[i].value === d.id);
    if (same) {
      // Only the free space changed: the list keeps its place, even when it is open.
      list.forEach((d, i) => {
        const t = label(d);
        if (sel.options[i].textContent !== t) sel.options[i].textContent = t;
      });
      return;
    }
    const chosen = sel.value;
    sel.replaceChildren(
      ...list.map((d) => {
        const o = document.createElement('option');
        o.value = d.id;
        o.textContent = label(d);
        return o;
      }),
    );
    sel.value = list.some((d) => d.id === chosen) ? chosen : list[0].id;
  }

  function exportButton(label, job, action, handler) {
    const b = actionButton(label, `export ${job.id}`, handler);
    // Kept across the queue's refreshes, so focus stays on the same button.
    b.dataset.key = `ex-${action}-${job.id}`;
    return b;
  }

  function actionsCell(...controls) {
    const td = document.createElement('td');
    const box = document.createElement('div');
    box.className = 'actions';
    box.append(...controls);
    td.append(box);
    return td;
  }

  function pendingRow(j) {
    const tr = document.createElement('tr');
    tr.append(cell('th', formatMs(j.created)), cell('td', jobWhat(j)), cell('td', destinationName(j.destination)), cell('td', countText(j.attempts)));
    const next = cell('td', nextAttemptText(j.next_attempt));
    if (typeof j.error === 'string' && j.error) {
      const last = document.createElement('span');
      last.className = 'bad block';
      last.textContent = `Last try: ${j.error}`;
      next.append(last);
    }
    tr.append(next);
    tr.append(
      actionsCell(
        exportButton('Try now', j, 'retry', () => retryExport(j)),
        exportButton('Cancel', j, 'delete', () => deleteExport(j, 'cancelled')),
      ),
    );
    return tr;
  }

  function failedRow(j) {
    const tr = document.createElement('tr');
    tr.append(
      cell('th', formatMs(j.finished)),
      cell('td', jobWhat(j)),
      cell('td', destinationName(j.destination)),
      cell('td', countText(j.attempts)),
      cell('td', text(j.error), 'bad'),
    );
    tr.append(
      actionsCell(
        exportButton('Retry', j, 'retry', () => retryExport(j)),
        exportButton('Delete', j, 'delete', () => deleteExport(j, 'deleted')),
      ),
    );
    return tr;
  }

  function finishedRow(j) {
    const tr = document.createElement('tr');
    const what = cell('td', jobWhat(j));
    what.append(span(text(j.file), 'file-name'));
    tr.append(
      cell('th', formatMs(j.finished)),
      what,
      cell('td', formatBytes(j.bytes), 'nowrap'),
      cell('td', tookText(j.duration_ms), 'nowrap'),
      cell('td', destinationName(j.destination)),
      cell('td', countText(j.attempts)),
    );
    if (typeof j.download === 'string' && j.download.startsWith('/')) {
      const a = document.createElement('a');
      a.className = 'button secondary';
      a.href = j.download;
      a.setAttribute('download', '');
      a.textContent = 'Download';
      a.setAttribute('aria-label', `Download ${text(j.file)}`);
      a.dataset.key = `ex-download-${j.id}`;
      tr.append(actionsCell(a));
    } else {
      tr.append(cell('td', 'Not kept on this device'));
    }
    return tr;
  }

  function fillJobs(id, jobs, row, columns, emptyText) {
    const body = $(id);
    if (!jobs.length) {
      const tr = document.createElement('tr');
      const td = cell('td', emptyText);
      td.colSpan = columns;
      tr.append(td);
      body.replaceChildren(tr);
    } else {
      body.replaceChildren(...jobs.map(row));
    }
  }

  function jobList(v) {
    return Array.isArray(v) ? v.filter((j) => j && typeof j === 'object') : [];
  }

  /** Shows the queue; true while something waits or runs. */
  function showExports(d) {
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
    const running = d.running && typeof d.running === 'object' ? d.running : null;
    const pending = jobList(d.pending);
    const failed = jobList(d.failed);
    const finished = jobList(d.finished);

    $('ex-running-box').hidden = !running;
    if (running) {
      const written = isNum(running.progress_bytes) ? `${formatBytes(running.progress_bytes)} written so far` : 'starting';
      setText('ex-running-text', `${jobWhat(running)} to ${destinationName(running.destination)}: ${written} (attempt ${countText(running.attempts)}).`);
    }
    $('ex-pending-box').hidden = pending.length === 0;
    fillJobs('ex-pending', pending, pendingRow, 6, '');
    $('ex-failed-box').hidden = failed.length === 0;
    fillJobs('ex-failed', failed, failedRow, 6, '');
    fillJobs('ex-finished', finished, finishedRow, 7, 'No exports yet.');

    if (focused) {
      const again = document.querySelector(`[data-key="${focused}"]`);
      if (again) again.focus();
    }

    if (exportWatch !== null) {
      const done = finished.find((j) => j.id === exportWatch);
      const bad = failed.find((j) => j.id === exportWatch);
      if (done) {
        exportWatch = null;
        const where = typeof done.download === 'string' && done.download ? ': download it from the list below' : ` to ${destinationName(done.destination)}`;
        exportMessage('', `Export ${done.id} is finished, ${text(done.file)} (${formatBytes(done.bytes)})${where}.`);
      } else if (bad) {
        exportWatch = null;
        exportMessage(`Export ${bad.id} failed: ${text(bad.error)}`);
      }
    }
    return Boolean(running) || pending.length > 0;
  }

  /**
   * Shows the export queue to the owner, and refreshes it: every few seconds while an
   * export waits or runs, else now and then (a USB drive plugged in, an export queued
   * from elsewhere). `destinations` reloads the destination list at once.
   */
  async function loadExports(destinations) {
    const seq = ++exportSeq;
    clearTimeout(exportTimer);
    exportTimer = null;
    const signedIn = !$('signed-in').hidden;
    $('export-box').hidden = !signedIn;
    $('export-signed-out').hidden = signedIn;
    if (!signedIn) return;
    if (document.hidden) {
      exportTimer = setTimeout(loadExports, EXPORT_IDLE_MS);
      return;
    }
    if (destinations === true || Date.now() - exportDestinationsAt > EXPORT_DESTINATIONS_MS) {
      await loadExportDestinations();
    }
    const r = await api('/api/export/status');
    if (seq !== exportSeq) return;
    let busy = false;
    if (!r.success) {
      exportFailedToLoad = true;
      setMessage('export-error', r.error.message);
    } else {
      if (exportFailedToLoad) setMessage('export-error', '');
      exportFailedToLoad = false;
      busy = showExports(r.data);
    }
    exportTimer = setTimeout(loadExports, busy ? EXPORT_BUSY_MS : EXPORT_IDLE_MS);
  }

  function focusExportHeading() {
    const h = $('export-heading');
    h.tabIndex = -1;
    h.focus();
  }

  async function retryExport(j) {
    const r = await api(`/api/export/${encodeURIComponent(j.id)}/retry`, { method: 'POST' });
    if (!r.success) exportMessage(r.error.message);
    else {
      exportWatch = j.id;
      exportMessage('', `Export ${j.id} runs again now.`);
    }
    await loadExports();
  }

  async function deleteExport(j, done) {
    const r = await api(`/api/export/${encodeURIComponent(j.id)}`, { method: 'DELETE' });
    if (!r.success) exportMessage(r.error.message);
    else {
      if (exportWatch === j.id) exportWatch = null;
      exportMessage('', `Export ${j.id} was ${done}.`);
    }
    await loadExports();
    if (r.success) focusExportHeading();
  }

  function exportForms() {
    const form = $('ex-form');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const from = $('ex-from');
      const to = $('ex-to');
      from.removeAttribute('aria-invalid');
      to.removeAttribute('aria-invalid');
      if (from.value && to.value && from.value > to.value) {
        from.setAttribute('aria-invalid', 'true');
        from.focus();
        return exportMessage('The From date comes after the To date: choose a From date on or before it.');
      }
      const body = { what: 'boatlog_csv', destination: $('ex-dest').value || 'device' };
      if (from.value) body.from = from.value;
      if (to.value) body.to = to.value;
      submitting(form, 'Queueing…', async () => {
        const r = await api('/api/export/generate', { method: 'POST', body });
        if (!r.success) {
          exportMessage(r.error.message);
          return;
        }
        exportWatch = isNum(r.data.id) ? r.data.id : null;
        exportMessage('', `Export ${text(r.data.id)} queued: the boat log to ${destinationName(r.data.destination)}.`);
        await loadExports();
      });
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) loadExports();
    });
  }

  function settingsPage() {
    ownerForms();
    updateForms();
    backupForms();
    exportForms();
    loadVersion();
    loadLicence();
    loadSession().then(() => {
      loadUpdate();
      loadBackups();
      loadExports(true);
    });
    every(HEALTH_EVERY_MS, loadHealth);
  }

  // ---------------------------------------------------------------- boat log

  const LOG_PAGE = 50;
  const LOG_KINDS = { text: 'Typed', voice: 'Spoken', auto: 'Written by d3kOS' };
  const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
  const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
  const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

  const boatlog = {
    filter: { kind: '', from: '', to: '' },
    /** Where the next (older) page starts; null when the last page is shown. */
    next: null,
    owner: false,
    shown: 0,
    loadingOlder: false,
    /** Day sections made so far, for their headings' ids. */
    days: 0,
    /** Bumped by every fresh load: an older answer arriving late is dropped. */
    generation: 0,
  };

  /** "2026-11-29" → "Sunday 29 November 2026"; other text as it is. */
  function dayName(day) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
    if (!m) return 'Date not available';
    const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
    if (!Number.isFinite(d.getTime())) return day;
    return `${WEEKDAYS[d.getUTCDay()]} ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
  }

  /** An entry's day and time on the boat's clock; UTC when the local time is missing. */
  function entryWhen(e) {
    const local = typeof e.local_time === 'string' ? /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})/.exec(e.local_time) : null;
    if (local) {
      const offset = typeof e.utc_offset === 'string' && e.utc_offset ? `UTC${e.utc_offset}` : '';
      return { day: local[1], time: local[2], offset };
    }
    let iso = typeof e.time === 'string' ? e.time : '';
    if (!iso && isNum(e.at) && Math.abs(e.at) <= 8.64e15) iso = new Date(e.at).toISOString();
    const utc = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso);
    if (utc) return { day: utc[1], time: utc[2], offset: 'UTC' };
    return { day: '', time: 'Time not available', offset: '' };
  }

  function positionText(lat, lon) {
    if (!isNum(lat) || !isNum(lon)) return null;
    return `${Math.abs(lat).toFixed(4)}° ${lat < 0 ? 'S' : 'N'}, ${Math.abs(lon).toFixed(4)}° ${lon < 0 ? 'W' : 'E'}`;
  }

  function span(value, className) {
    const s = document.createElement('span');
    s.textContent = value;
    if (className) s.className = className;
    return s;
  }

  function entryItem(e, when) {
    const name = `the entry of ${when.time} on ${dayName(when.day)}`;
    const li = document.createElement('li');
    li.className = 'entry';
    li.dataset.id = String(e.id);

    const meta = document.createElement('p');
    meta.className = 'entry-meta';
    const time = document.createElement('time');
    time.className = 'entry-time';
    if (typeof e.time === 'string' && e.time) time.dateTime = e.time;
    time.textContent = when.time;
    meta.append(time);
    if (when.offset) meta.append(span(when.offset));
    const kind = LOG_KINDS[e.kind] ? e.kind : 'other';
    meta.append(span(LOG_KINDS[e.kind] || text(e.kind), `kind kind-${kind}`));
    meta.append(span(`by ${text(e.author)}`));
    li.append(meta);

    const body = document.createElement('p');
    body.className = 'entry-text';
    // Each entry sets its own direction: Hebrew or Arabic reads right to left.
    body.dir = 'auto';
    if (typeof e.text === 'string' && e.text.trim()) body.textContent = e.text;
    else {
      body.textContent = e.kind === 'voice' ? 'No transcript.' : 'No text.';
      body.classList.add('entry-empty');
    }
    li.append(body);

    const facts = [];
    const pos = positionText(e.latitude, e.longitude);
    if (pos) facts.push(`Position ${pos}`);
    if (isNum(e.engine_hours)) facts.push(`Engine ${formatNumber(e.engine_hours, 1, 'h')}`);
    if (facts.length) li.append(cell('p', facts.join(' · '), 'entry-facts'));

    if (e.has_audio === true && isNum(e.id)) {
      const audio = document.createElement('audio');
      audio.controls = true;
      audio.preload = 'none';
      audio.src = `/api/boatlog/${encodeURIComponent(e.id)}/audio`;
      audio.setAttribute('aria-label', `Recording of ${name}`);
      li.append(audio);
    }

    if (boatlog.owner && isNum(e.id)) {
      const box = document.createElement('div');
      box.className = 'actions';
      box.append(actionButton('Delete', name, () => confirmEntryDelete(e, name, li)));
      li.append(box);
    }
    return li;
  }

  /** The last day shown and its list, for the next entries to join. */
  function lastDay() {
    const days = $('log-days');
    const section = days.lastElementChild;
    return section ? { day: section.dataset.day, list: section.querySelector('ol') } : null;
  }

  /** Adds entries (newest first) under their days; returns the first one added. */
  function appendEntries(entries) {
    const days = $('log-days');
    let first = null;
    let last = lastDay();
    for (const e of entries) {
      if (!e || typeof e !== 'object') continue;
      const when = entryWhen(e);
      if (!last || last.day !== when.day) {
        const section = document.createElement('section');
        section.className = 'log-day';
        section.dataset.day = when.day;
        const h = document.createElement('h3');
        boatlog.days += 1;
        h.id = `log-day-${boatlog.days}`;
        h.textContent = dayName(when.day);
        section.setAttribute('aria-labelledby', h.id);
        const list = document.createElement('ol');
        list.className = 'entries';
        section.append(h, list);
        days.append(section);
        last = { day: when.day, list };
      }
      const item = entryItem(e, when);
      last.list.append(item);
      boatlog.shown += 1;
      if (!first) first = item;
    }
    return first;
  }

  function filtered() {
    const f = boatlog.filter;
    return Boolean(f.kind || f.from || f.to);
  }

  function showLogStatus() {
    const n = boatlog.shown;
    let t;
    if (n === 0) t = filtered() ? 'No entries match these choices.' : 'No entries yet.';
    else t = `Showing ${n} ${n === 1 ? 'entry' : 'entries'}${boatlog.next ? '; older ones follow with “Load older entries”' : ''}.`;
    setText('log-status', t);
  }

  function logQuery(extra) {
    const q = new URLSearchParams();
    const f = boatlog.filter;
    if (f.kind) q.set('kind', f.kind);
    if (f.from) q.set('from', f.from);
    if (f.to) q.set('to', f.to);
    for (const [k, v] of Object.entries(extra)) q.set(k, v);
    return q.toString();
  }

  function showCsvLink() {
    const q = new URLSearchParams();
    if (boatlog.filter.from) q.set('from', boatlog.filter.from);
    if (boatlog.filter.to) q.set('to', boatlog.filter.to);
    const s = q.toString();
    $('log-csv').href = `/api/boatlog/export.csv${s ? `?${s}` : ''}`;
  }

  /** Loads the newest page of entries (`older` false) or the next older one. */
  async function loadEntries(older) {
    const button = $('log-older');
    if (older && (boatlog.loadingOlder || !boatlog.next)) return;
    const generation = older ? boatlog.generation : ++boatlog.generation;
    const extra = { limit: String(LOG_PAGE) };
    const days = $('log-days');
    days.setAttribute('aria-busy', 'true');
    if (older) {
      extra.before = boatlog.next;
      // Not disabled: a disabled button drops the focus of whoever pressed it.
      boatlog.loadingOlder = true;
      button.textContent = 'Loading…';
    }
    const r = await api(`/api/boatlog?${logQuery(extra)}`);
    if (older) {
      boatlog.loadingOlder = false;
      button.textContent = 'Load older entries';
    }
    if (generation !== boatlog.generation) return;
    days.setAttribute('aria-busy', 'false');
    if (!r.success) {
      setMessage('log-error', r.error.message);
      if (!older) {
        $('log-days').replaceChildren();
        boatlog.shown = 0;
        boatlog.next = null;
        button.hidden = true;
        setText('log-status', 'The entries are not available.');
      }
      return;
    }
    setMessage('log-error', '');
    const d = r.data;
    if (typeof d.time_zone === 'string' && d.time_zone) {
      setText('log-zone', `Times are the boat's local time (${d.time_zone}).`);
    }
    if (!older) {
      $('log-days').replaceChildren();
      boatlog.shown = 0;
    }
    const hadFocus = document.activeElement === button;
    const first = appendEntries(Array.isArray(d.entries) ? d.entries : []);
    boatlog.next = typeof d.next === 'string' && d.next ? d.next : null;
    button.hidden = !boatlog.next;
    showLogStatus();
    // Whoever asked for older entries reads on from the first of them.
    if (older && hadFocus && first) {
      first.tabIndex = -1;
      first.focus();
    }
  }

  function readFilter() {
    const kind = $('filter-kind').value;
    return {
      kind: LOG_KINDS[kind] ? kind : '',
      from: $('filter-from').value,
      to: $('filter-to').value,
    };
  }

  function showFilter() {
    $('filter-kind').value = boatlog.filter.kind;
    $('filter-from').value = boatlog.filter.from;
    $('filter-to').value = boatlog.filter.to;
  }

  /** The filter is kept in the address, so a reload or a bookmark shows the same entries. */
  function keepFilter() {
    const q = logQuery({});
    try {
      window.history.replaceState(null, '', q ? `?${q}` : window.location.pathname);
    } catch (_) {
      // An address that cannot be changed only loses the bookmark.
    }
  }

  function filterFromAddress() {
    const q = new URLSearchParams(window.location.search);
    const kind = q.get('kind') || '';
    const date = (v) => (v && DATE_RE.test(v) ? v : '');
    boatlog.filter = { kind: LOG_KINDS[kind] ? kind : '', from: date(q.get('from')), to: date(q.get('to')) };
  }

  async function loadOwner() {
    const r = await api('/api/session');
    boatlog.owner = r.success && r.data.authenticated === true;
    $('add-checking').hidden = true;
    $('add-form').hidden = !boatlog.owner;
    $('add-signed-out').hidden = boatlog.owner;
    if (!r.success) setMessage('add-error', r.error.message);
  }

  let entryTarget = null;
  let entryOpener = null;

  function confirmEntryDelete(e, name, item) {
    entryTarget = { e, name, item };
    entryOpener = document.activeElement;
    const recording = e.has_audio === true ? ', with its recording' : '';
    setText('log-confirm-text', `${name.charAt(0).toUpperCase()}${name.slice(1)} by ${text(e.author)} is deleted from the boat log for good${recording}. Backups made before now still hold it.`);
    const t = typeof e.text === 'string' ? e.text : '';
    const quote = $('log-confirm-quote');
    quote.textContent = t.length > 300 ? `${t.slice(0, 300)}…` : t;
    quote.hidden = !t.trim();
    const dlg = $('log-confirm');
    if (typeof dlg.showModal === 'function') dlg.showModal();
    else dlg.setAttribute('open', '');
    $('log-confirm-no').focus();
  }

  function closeEntryConfirm(refocus) {
    const dlg = $('log-confirm');
    if (typeof dlg.close === 'function') dlg.close();
    else dlg.removeAttribute('open');
    if (refocus && entryOpener && entryOpener.focus) entryOpener.focus();
  }

  async function deleteEntry() {
    const target = entryTarget;
    entryTarget = null;
    if (!target) return closeEntryConfirm(true);
    const yes = $('log-confirm-yes');
    yes.disabled = true;
    const r = await api(`/api/boatlog/${encodeURIComponent(target.e.id)}`, { method: 'DELETE' });
    yes.disabled = false;
    if (!r.success) {
      closeEntryConfirm(true);
      setMessage('log-note', '');
      setMessage('log-error', r.error.message);
      if (r.error.code === 'unauthorized') await loadOwner();
      return;
    }
    closeEntryConfirm(false);
    const list = target.item.parentElement;
    target.item.remove();
    if (list && !list.children.length) list.closest('section').remove();
    boatlog.shown = Math.max(0, boatlog.shown - 1);
    showLogStatus();
    setMessage('log-error', '');
    setMessage('log-note', `${target.name.charAt(0).toUpperCase()}${target.name.slice(1)} was deleted.`);
    $('entries-heading').focus();
  }

  function boatlogForms() {
    const add = $('add-form');
    const area = $('add-text');
    add.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = area.value;
      if (!t.trim()) {
        area.setAttribute('aria-invalid', 'true');
        setMessage('add-note', '');
        setMessage('add-error', 'Write the entry first.');
        area.focus();
        return;
      }
      submitting(add, 'Adding…', async () => {
        const r = await api('/api/boatlog', { method: 'POST', body: { text: t } });
        if (!r.success) {
          setMessage('add-note', '');
          setMessage('add-error', r.error.message);
          if (r.error.code === 'unauthorized') await loadOwner();
          return;
        }
        area.value = '';
        area.removeAttribute('aria-invalid');
        setMessage('add-error', '');
        await loadEntries(false);
        const listed = [...document.querySelectorAll('#log-days .entry')].some((li) => li.dataset.id === String(r.data.id));
        const hidden = listed ? '' : ' The chosen entries leave it out: “Show all” lists it.';
        setMessage('add-note', `Entry added at ${entryWhen(r.data).time}.${hidden}`);
      });
    });

    const filter = $('filter-form');
    filter.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const f = readFilter();
      const from = $('filter-from');
      from.removeAttribute('aria-invalid');
      if (f.from && f.to && f.from > f.to) {
        from.setAttribute('aria-invalid', 'true');
        setMessage('log-error', 'The From date comes after the To date: choose a From date on or before it.');
        from.focus();
        return;
      }
      boatlog.filter = f;
      keepFilter();
      showCsvLink();
      setMessage('log-note', '');
      loadEntries(false);
    });
    $('filter-clear').addEventListener('click', () => {
      boatlog.filter = { kind: '', from: '', to: '' };
      showFilter();
      $('filter-from').removeAttribute('aria-invalid');
      keepFilter();
      showCsvLink();
      setMessage('log-note', '');
      loadEntries(false);
    });
    $('log-older').addEventListener('click', () => loadEntries(true));
    $('log-confirm-yes').addEventListener('click', deleteEntry);
    $('log-confirm-no').addEventListener('click', () => {
      entryTarget = null;
      closeEntryConfirm(true);
    });
    $('log-confirm').addEventListener('cancel', () => {
      entryTarget = null;
      if (entryOpener && entryOpener.focus) setTimeout(() => entryOpener.focus(), 0);
    });
  }

  async function boatlogPage() {
    filterFromAddress();
    showFilter();
    showCsvLink();
    boatlogForms();
    // Delete buttons are drawn with the entries: who is signed in comes first.
    await loadOwner();
    await loadEntries(false);
  }

  // ---------------------------------------------------------------- live data (Signal K)

  /** After this long without a new value, a value is shown as stale, not as current. */
  const STALE_MS = 5000;
  /** Reconnection waits double from the first to the last. */
  const RETRY_FIRST_MS = 1000;
  const RETRY_LAST_MS = 30000;
  /** A server that never says hello is still asked for data after this long. */
  const HELLO_WAIT_MS = 2000;
  const STAYED_UP_MS = 10000;
  const UNITS_EVERY_MS = 60000;

  /**
   * Follows the device's Signal K stream, same origin: asks for `subscribe` once the server
   * has said hello, hands each value about this vessel to `onValue(path, value, at)` and each
   * change of the link to `onLink(state)` ('connecting', 'open' or 'down'). A dropped socket
   * is opened again after 1, 2, 4 … 30 s, with jitter, so a dozen screens on board do not
   * knock at once when the daemon restarts; the wait starts again at 1 s once a socket has
   * stayed up for a while, not merely opened (a server that greets and hangs up would
   * otherwise be asked every second).
   *
   * `at` is when the value was measured on this browser's clock: the time it arrived, or
   * the server's timestamp when that is older (a value the server kept from before), with
   * the two clocks compared at the hello.
   */
  function signalkStream(subscribe, onValue, onLink) {
    const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${window.location.host}/signalk/v1/stream?subscribe=none`;
    let delay = 0;
    let self = null;
    let skew = 0;

    const send = (ws, msg) => {
      try {
        ws.send(JSON.stringify(msg));
      } catch (_) {
        // Closing already: the next socket subscribes again.
      }
    };

    const measuredAt = (stamp, now) => {
      const t = typeof stamp === 'string' ? Date.parse(stamp) : NaN;
      return Number.isFinite(t) ? Math.min(now, t + skew) : now;
    };

    const updates = (msg) => {
      const ctx = msg.context;
      if (typeof ctx === 'string' && ctx !== 'vessels.self' && ctx !== self) return; // another vessel (AIS)
      const now = Date.now();
      for (const u of msg.updates) {
        if (!u || !Array.isArray(u.values)) continue;
        const at = measuredAt(u.timestamp, now);
        for (const v of u.values) {
          if (v && typeof v.path === 'string' && v.path) onValue(v.path, v.value, at);
        }
      }
    };

    const connect = () => {
      onLink('connecting');
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (_) {
        retry();
        return;
      }
      let subscribed = false;
      let helloTimer = null;
      let upSince = 0;
      const ask = () => {
        if (subscribed) return;
        subscribed = true;
        clearTimeout(helloTimer);
        send(ws, { context: 'vessels.self', subscribe });
        upSince = Date.now();
        onLink('open');
      };
      ws.addEventListener('open', () => {
        helloTimer = setTimeout(ask, HELLO_WAIT_MS);
      });
      ws.addEventListener('message', (ev) => {
        let msg;
        try {
          msg = JSON.parse(ev.data);
        } catch (_) {
          return;
        }
        if (!msg || typeof msg !== 'object') return;
        if (Array.isArray(msg.updates)) {
          ask();
          updates(msg);
          return;
        }
        if (typeof msg.self === 'string' || typeof msg.name === 'string') {
          self = typeof msg.self === 'string' ? msg.self : null;
          const t = typeof msg.timestamp === 'string' ? Date.parse(msg.timestamp) : NaN;
          skew = Number.isFinite(t) ? Date.now() - t : 0;
          ask();
        }
      });
      // An error is always followed by close, which does the retrying.
      ws.addEventListener('close', () => {
        clearTimeout(helloTimer);
        if (upSince && Date.now() - upSince >= STAYED_UP_MS) delay = 0;
        retry();
      });
    };

    const retry = () => {
      delay = delay ? Math.min(delay * 2, RETRY_LAST_MS) : RETRY_FIRST_MS;
      onLink('down');
      setTimeout(connect, delay * (0.8 + 0.4 * Math.random()));
    };

    connect();
  }

  // ---- units: values arrive in SI (Signal K); the owner chose what is shown

  const DEFAULT_UNITS = { pressure: 'bar', temperature: 'C', volume: 'L', speed: 'kn' };
  const UNIT_CHOICES = {
    pressure: ['bar', 'psi', 'kPa'],
    temperature: ['C', 'F'],
    volume: ['L', 'gal'],
    speed: ['kn', 'km/h', 'mph'],
  };
  /** US gallon in m³; "gal" is the US gallon, as engine makers in America state fuel rates. */
  const US_GALLON = 3.785411784e-3;
  const PSI = 6894.757293168;

  function ownerUnits(u) {
    const out = { ...DEFAULT_UNITS };
    if (u && typeof u === 'object') {
      for (const k of Object.keys(UNIT_CHOICES)) if (UNIT_CHOICES[k].includes(u[k])) out[k] = u[k];
    }
    return out;
  }

  /** An SI value of `kind` in the owner's units: the number, its decimals and its unit. */
  function display(kind, si, units) {
    const u = units || DEFAULT_UNITS;
    const ok = isNum(si);
    const v = (f) => (ok ? f(si) : null);
    switch (kind) {
      case 'rpm':
        return { value: v((x) => x * 60), digits: 0, unit: 'rpm' };
      case 'pressure':
        if (u.pressure === 'psi') return { value: v((x) => x / PSI), digits: 0, unit: 'psi' };
        if (u.pressure === 'kPa') return { value: v((x) => x / 1000), digits: 0, unit: 'kPa' };
        return { value: v((x) => x / 1e5), digits: 1, unit: 'bar' };
      case 'temperature':
        if (u.temperature === 'F') return { value: v((x) => ((x - 273.15) * 9) / 5 + 32), digits: 0, unit: '°F' };
        return { value: v((x) => x - 273.15), digits: 0, unit: '°C' };
      case 'voltage':
        return { value: v((x) => x), digits: 1, unit: 'V' };
      case 'flow':
        if (u.volume === 'gal') return { value: v((x) => (x * 3600) / US_GALLON), digits: 1, unit: 'gal/h' };
        return { value: v((x) => x * 3.6e6), digits: 1, unit: 'L/h' };
      case 'volume':
        if (u.volume === 'gal') return { value: v((x) => x / US_GALLON), digits: 0, unit: 'gal' };
        return { value: v((x) => x * 1000), digits: 0, unit: 'L' };
      case 'hours':
        return { value: v((x) => x / 3600), digits: 1, unit: 'h' };
      case 'ratio':
        return { value: v((x) => x * 100), digits: 0, unit: '%' };
      case 'speed':
        if (u.speed === 'km/h') return { value: v((x) => x * 3.6), digits: 1, unit: 'km/h' };
        if (u.speed === 'mph') return { value: v((x) => (x * 3600) / 1609.344), digits: 1, unit: 'mph' };
        return { value: v((x) => (x * 3600) / 1852), digits: 1, unit: 'kn' };
      case 'angle':
        return { value: v((x) => (((x * 180) / Math.PI) % 360 + 360) % 360), digits: 0, unit: '°' };
      default:
        return { value: v((x) => x), digits: 1, unit: '' };
    }
  }

  /** A number with `digits` decimals; never "-0". */
  function fixed(value, digits) {
    if (!isNum(value)) return '—';
    const s = value.toFixed(digits);
    return /^-0(\.0+)?$/.test(s) ? s.slice(1) : s;
  }

  /** A bearing as three digits, the way courses are spoken: 45° → "045". */
  function bearing(deg) {
    if (!isNum(deg)) return '—';
    const d = Math.round(deg) % 360;
    return String(d).padStart(3, '0');
  }

  /** 4 → "4 s", 300 → "5 min", 7200 → "2 h". */
  function ageText(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 172800) return `${Math.floor(s / 3600)} h`;
    return `${Math.floor(s / 86400)} d`;
  }

  /**
   * What the age line under a value says, and whether the value is stale; `short` for the
   * dashboard, where a dozen values each say it.
   */
  function freshness(entry, now, short) {
    if (!entry) return { text: 'No data', stale: false, none: true };
    const age = now - entry.at;
    if (age >= STALE_MS) return { text: short ? `Stale: ${ageText(age)} old` : `Stale: last update ${ageText(age)} ago`, stale: true, none: false };
    if (short) return { text: age < 1500 ? 'Live' : `${ageText(age)} ago`, stale: false, none: false };
    return { text: age < 1500 ? 'Updated just now' : `Updated ${ageText(age)} ago`, stale: false, none: false };
  }

  /** Sets an element's text only when it changed: no churn, no repeated announcements. */
  function put(el, value) {
    if (el && el.textContent !== value) el.textContent = value;
  }

  function flag(el, name, on) {
    if (el) el.classList.toggle(name, Boolean(on));
  }

  /** What the link line says: [state for CSS, words]. */
  function linkWords(link, hasData, stale, waitedLong, what, locked) {
    if (locked && !hasData) return ['locked', 'Signed out: no live data'];
    if (link === 'down') return ['down', 'Connection lost: trying again…'];
    if (link === 'connecting') return ['connecting', 'Connecting…'];
    if (!hasData) return waitedLong ? ['nodata', `No data from the ${what}`] : ['waiting', `Waiting for the ${what}…`];
    if (stale) return ['stale', `No new data from the ${what}`];
    return ['live', 'Live data'];
  }

  function showLink(el, words) {
    if (!el) return;
    if (el.dataset.state !== words[0]) el.dataset.state = words[0];
    put(el, words[1]);
  }

  const NOTES = {
    down: 'The live data of the helm computer cannot be reached. This page keeps trying; values it shows are the last known ones.',
    locked: 'On this device live data is for the signed-in owner only.',
  };

  /**
   * A sentence under the link line for the states that need one: what is wrong and what to
   * do, with the way to the sign-in form when that is the answer.
   */
  function showNote(prefix, state, nodata) {
    const note = state === 'nodata' ? nodata : NOTES[state] || '';
    put($(`${prefix}-note-text`), note);
    $(`${prefix}-note-signin`).hidden = state !== 'locked';
    $(`${prefix}-note`).hidden = !note;
  }

  /** Loads the owner's display units into `target.units`; true when they changed. */
  async function loadUnits(target) {
    const r = await api('/api/engine/current');
    if (!r.success) return { ok: false, r };
    const d = engineAnswer(r);
    const next = ownerUnits(d.units);
    const changed = JSON.stringify(next) !== JSON.stringify(target.units);
    target.units = next;
    return { ok: true, changed, d };
  }

  /** The engine answers carry their fields beside `success`; a `data` envelope is read too. */
  function engineAnswer(r) {
    const d = r.data;
    if (d && typeof d === 'object' && Object.keys(d).length) return d;
    return r;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';

  function svgEl(tag, attrs) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    return el;
  }

  // ---------------------------------------------------------------- engine dashboard

  const ENGINE_METRICS = {
    revolutions: { name: 'Engine speed', path: 'revolutions', kind: 'rpm', trend: true },
    oilPressure: { name: 'Oil pressure', path: 'oilPressure', kind: 'pressure', trend: true },
    temperature: { name: 'Coolant temperature', path: 'temperature', kind: 'temperature', trend: true },
    alternatorVoltage: { name: 'Alternator voltage', path: 'alternatorVoltage', kind: 'voltage', trend: true },
    fuelRate: { name: 'Fuel rate', path: 'fuel.rate', kind: 'flow', trend: true },
    runTime: { name: 'Engine hours', path: 'runTime', kind: 'hours', trend: false },
    oilTemperature: { name: 'Oil temperature', path: 'oilTemperature', kind: 'temperature', trend: false },
  };
  const TREND_METRICS = Object.keys(ENGINE_METRICS).filter((k) => ENGINE_METRICS[k].trend);
  const METRIC_OF_PATH = Object.fromEntries(Object.entries(ENGINE_METRICS).map(([k, d]) => [d.path, k]));
  const LEVELS = {
    normal: { text: 'Normal', rank: 0 },
    info: { text: 'Info', rank: 1 },
    warning: { text: 'Warning', rank: 2 },
    critical: { text: 'Critical', rank: 3 },
  };
  /** Signal K notification states as the engine's deviation levels. */
  const NOTE_LEVELS = { normal: 'normal', nominal: 'normal', alert: 'info', warn: 'warning', alarm: 'critical', emergency: 'critical' };
  const ENGINE_KEY = 'd3kos-engine';
  const CURRENT_EVERY_MS = 5000;
  const TREND_EVERY_MS = 60000;
  const TREND_SPAN_MS = 3600000;
  /** Dial scales by shown unit; a value or limit beyond the end widens the dial. */
  const DIAL_SCALES = {
    rpm: { min: 0, max: 4000, step: 1000, label: (v) => String(v / 1000), note: '×1000' },
    bar: { min: 0, max: 7, step: 1 },
    psi: { min: 0, max: 100, step: 20 },
    kPa: { min: 0, max: 700, step: 100 },
    '°C': { min: 40, max: 120, step: 20 },
    '°F': { min: 100, max: 250, step: 50 },
    '%': { min: 0, max: 100, step: 25, label: (v) => ({ 0: 'E', 25: '¼', 50: '½', 75: '¾', 100: 'F' })[v] },
  };
  const DIAL_KINDS = { revolutions: 'rpm', oilPressure: 'pressure', temperature: 'temperature', fuelLevel: 'ratio' };

  const dash = {
    /** Signal K path → {value, at}. */
    live: new Map(),
    units: { ...DEFAULT_UNITS },
    link: 'connecting',
    openedAt: 0,
    /** Signed out on a device whose live data is for the owner only. */
    locked: false,
    /** The last answer of /api/engine/current and when it came. */
    current: null,
    currentAt: 0,
    /** "engine.metric" → {level, message, at} from notifications.propulsion.*. */
    notes: new Map(),
    /** Metric → {points} or {failed}: the last hour of `trendEngine`. */
    trends: new Map(),
    trendEngine: null,
    trendsDrawn: '',
    trendsAskedFor: null,
    dials: new Map(),
    shown: null,
    engineList: '',
    alertsShown: '',
    /** The healing notices shown, as the signature of their rows. */
    healShown: '',
    drawQueued: false,
  };

  function engineRank(id) {
    if (id === 'port') return -2;
    if (id === 'starboard') return -1;
    return /^\d+$/.test(id) ? Number(id) : 1e6;
  }

  function engineIds() {
    const ids = new Set();
    for (const p of dash.live.keys()) {
      const m = /^propulsion\.([^.]+)\./.exec(p);
      if (m) ids.add(m[1]);
    }
    const c = dash.current;
    if (c && Array.isArray(c.engines)) for (const e of c.engines) if (e && typeof e.id === 'string' && e.id) ids.add(e.id);
    return [...ids].sort((a, b) => engineRank(a) - engineRank(b) || a.localeCompare(b));
  }

  /** "Port engine", "Starboard engine", "Engine 2"; a boat with one engine calls it "Engine". */
  function engineName(id, ids) {
    if (ids && ids.length === 1) return 'Engine';
    if (id === 'port') return 'Port engine';
    if (id === 'starboard') return 'Starboard engine';
    return `Engine ${id}`;
  }

  function shortEngineName(id) {
    if (id === 'port') return 'Port';
    if (id === 'starboard') return 'Starboard';
    return `Engine ${id}`;
  }

  function storedEngine() {
    try {
      return window.localStorage.getItem(ENGINE_KEY);
    } catch (_) {
      return null;
    }
  }

  function chooseEngine(id) {
    try {
      window.localStorage.setItem(ENGINE_KEY, id);
    } catch (_) {
      // Kept for this visit only.
    }
    dash.shown = id;
    dash.engineList = '';
    drawDashboard();
  }

  function apiEngine(id) {
    const c = dash.current;
    if (!c || !Array.isArray(c.engines)) return null;
    return c.engines.find((e) => e && e.id === id) || null;
  }

  function apiMetric(id, metric) {
    const e = apiEngine(id);
    if (!e || !Array.isArray(e.metrics)) return null;
    return e.metrics.find((m) => m && m.metric === metric) || null;
  }

  /** The alerts in force: the last notification where it is newer than the last answer. */
  function activeAlerts() {
    const byKey = new Map();
    const c = dash.current;
    if (c && Array.isArray(c.alerts)) {
      for (const a of c.alerts) {
        if (!a || typeof a.engine !== 'string' || typeof a.metric !== 'string' || !LEVELS[a.level]) continue;
        byKey.set(`${a.engine}.${a.metric}`, { engine: a.engine, metric: a.metric, level: a.level, message: a.message, since: a.since });
      }
    }
    for (const [key, n] of dash.notes) {
      if (dash.current && n.at < dash.currentAt) continue; // the answer since is newer
      if (!n.level || n.level === 'normal') byKey.delete(key);
      else byKey.set(key, { engine: n.engine, metric: n.metric, level: n.level, message: n.message, since: n.since });
    }
    return [...byKey.values()]
      .filter((a) => a.level !== 'normal')
      .sort((a, b) => LEVELS[b.level].rank - LEVELS[a.level].rank || engineRank(a.engine) - engineRank(b.engine));
  }

  /** The deviation level of one metric: a newer notification wins over the last answer. */
  function metricLevel(id, metric) {
    const n = dash.notes.get(`${id}.${metric}`);
    const m = apiMetric(id, metric);
    if (n && (!dash.current || n.at >= dash.currentAt || !m)) return { level: n.level || 'normal', sigma: m ? m.sigma : null };
    if (m && LEVELS[m.level]) return { level: m.level, sigma: m.sigma, limit: m.limit };
    return null;
  }

  function worstLevel(id, alerts) {
    let worst = null;
    for (const a of alerts) if (a.engine === id && (!worst || LEVELS[a.level].rank > LEVELS[worst].rank)) worst = a.level;
    return worst;
  }

  function timeOfDay(iso) {
    const t = typeof iso === 'string' ? Date.parse(iso) : NaN;
    if (!Number.isFinite(t)) return '';
    const d = new Date(t);
    const pad = (x) => String(x).padStart(2, '0');
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
  }

  function drawAlerts(ids) {
    const alerts = activeAlerts();
    const box = $('eng-alerts');
    const rows = alerts.map((a) => {
      const what = ENGINE_METRICS[a.metric] ? ENGINE_METRICS[a.metric].name : text(a.metric);
      const message = typeof a.message === 'string' && a.message.trim() ? a.message.trim() : `${what}: ${LEVELS[a.level].text.toLowerCase()}`;
      const since = timeOfDay(a.since);
      return { level: a.level, head: LEVELS[a.level].text.toUpperCase(), body: `${engineName(a.engine, ids)}: ${message}`, since: since ? `since ${since}` : '' };
    });
    const signature = JSON.stringify(rows);
    if (signature === dash.alertsShown) return alerts;
    dash.alertsShown = signature;
    if (!rows.length) {
      box.replaceChildren();
      return alerts;
    }
    const list = document.createElement('ul');
    list.className = 'alert-list';
    for (const r of rows) {
      const li = document.createElement('li');
      li.className = `alert-item level-${r.level}`;
      li.append(span(r.head, 'alert-level'), span(r.body, 'alert-text'));
      if (r.since) li.append(span(r.since, 'alert-since'));
      list.append(li);
    }
    box.replaceChildren(list);
    return alerts;
  }

  function drawEngineSwitch(ids, alerts) {
    const box = $('engine-switch');
    const signature = JSON.stringify([ids, dash.shown, ids.map((id) => worstLevel(id, alerts))]);
    if (signature === dash.engineList) return;
    dash.engineList = signature;
    box.hidden = ids.length < 2;
    const hadFocus = box.contains(document.activeElement) ? document.activeElement.dataset.engine : null;
    box.replaceChildren(
      ...ids.map((id) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'secondary';
        b.dataset.engine = id;
        b.setAttribute('aria-pressed', id === dash.shown ? 'true' : 'false');
        b.append(span(shortEngineName(id)), span(' engine', 'visually-hidden'));
        const worst = worstLevel(id, alerts);
        if (worst) b.append(span(', ', 'visually-hidden'), span(LEVELS[worst].text, `switch-level level-${worst}`), span(' alert', 'visually-hidden'));
        b.addEventListener('click', () => chooseEngine(id));
        return b;
      }),
    );
    if (hadFocus) {
      const again = box.querySelector(`[data-engine="${hadFocus}"]`);
      if (again) again.focus();
    }
  }

  // ---- dials

  const DIAL_R = 76;

  function dialPoint(f, r) {
    const a = Math.PI * (1 - Math.min(1, Math.max(0, f)));
    return [100 + r * Math.cos(a), 100 - r * Math.sin(a)];
  }

  function arcPath(f0, f1, r) {
    const [x0, y0] = dialPoint(f0, r);
    const [x1, y1] = dialPoint(f1, r);
    return `M ${x0.toFixed(2)} ${y0.toFixed(2)} A ${r} ${r} 0 0 1 ${x1.toFixed(2)} ${y1.toFixed(2)}`;
  }

  /**
   * Draws a dial face for the scale of `unit`, wide enough for `reach`: a half circle with
   * ticks across it, their numbers outside (the two ends below), the value as a band along
   * it and a limit as a thin band outside. Returns what `setDial` moves.
   */
  function buildDial(svg, unit, reach) {
    const base = DIAL_SCALES[unit];
    if (!base) {
      svg.replaceChildren();
      return null;
    }
    let max = base.max;
    if (isNum(reach) && reach > max) max = Math.ceil(reach / base.step) * base.step;
    const scale = { ...base, max };
    const frac = (v) => (v - scale.min) / (scale.max - scale.min);
    const parts = [svgEl('path', { d: arcPath(0, 1, DIAL_R), class: 'dial-track' })];
    const limit = svgEl('path', { d: arcPath(0, 0, DIAL_R + 11), class: 'dial-limit', visibility: 'hidden' });
    const value = svgEl('path', { d: arcPath(0, 1, DIAL_R), class: 'dial-value', pathLength: 100, 'stroke-dasharray': '0 100' });
    parts.push(limit, value);
    const steps = Math.round((scale.max - scale.min) / scale.step);
    for (let i = 0; i <= steps; i += 1) {
      const v = scale.min + i * scale.step;
      const f = i / steps;
      const [x0, y0] = dialPoint(f, DIAL_R - 9);
      const [x1, y1] = dialPoint(f, DIAL_R + 9);
      parts.push(svgEl('line', { x1: x0.toFixed(2), y1: y0.toFixed(2), x2: x1.toFixed(2), y2: y1.toFixed(2), class: 'dial-tick' }));
      let lx;
      let ly;
      let anchor = 'middle';
      if (i === 0 || i === steps) {
        [lx] = dialPoint(f, DIAL_R);
        ly = 100 + 22;
      } else {
        [lx, ly] = dialPoint(f, DIAL_R + 17);
        ly += 5;
        if (lx < 90) anchor = 'end';
        else if (lx > 110) anchor = 'start';
      }
      const t = svgEl('text', { x: lx.toFixed(2), y: ly.toFixed(2), class: 'dial-label', 'text-anchor': anchor });
      t.textContent = scale.label ? scale.label(v) : String(Math.round(v * 10) / 10);
      parts.push(t);
    }
    if (scale.note) {
      const t = svgEl('text', { x: 100, y: 44, class: 'dial-note', 'text-anchor': 'middle' });
      t.textContent = scale.note;
      parts.push(t);
    }
    svg.replaceChildren(...parts);
    return { unit, max: scale.max, frac, value, limit };
  }

  /** Sets the dial of `metric` to `shown` (in the shown unit), with its limit zone. */
  function setDial(metric, shown, limitShown, limitKind, level) {
    const section = document.querySelector(`.dial-gauge[data-metric="${metric}"]`);
    if (!section) return;
    const svg = section.querySelector('svg.dial-face');
    let dial = dash.dials.get(metric);
    const reach = Math.max(isNum(shown.value) ? shown.value : -Infinity, isNum(limitShown) ? limitShown : -Infinity);
    const wanted = DIAL_SCALES[shown.unit];
    const needMax = wanted && isNum(reach) && reach > wanted.max ? Math.ceil(reach / wanted.step) * wanted.step : wanted ? wanted.max : null;
    if (!dial || dial.unit !== shown.unit || dial.max < needMax) {
      dial = buildDial(svg, shown.unit, reach);
      dash.dials.set(metric, dial);
    }
    if (!dial) return;
    const f = isNum(shown.value) ? Math.min(1, Math.max(0, dial.frac(shown.value))) : 0;
    const dash100 = `${(f * 100).toFixed(2)} 100`;
    if (dial.value.getAttribute('stroke-dasharray') !== dash100) dial.value.setAttribute('stroke-dasharray', dash100);
    dial.value.setAttribute('class', `dial-value${level ? ` level-${level}` : ''}`);
    if (isNum(limitShown) && (limitKind === 'max' || limitKind === 'min')) {
      const lf = Math.min(1, Math.max(0, dial.frac(limitShown)));
      dial.limit.setAttribute('d', limitKind === 'max' ? arcPath(lf, 1, DIAL_R + 11) : arcPath(0, lf, DIAL_R + 11));
      dial.limit.setAttribute('visibility', 'visible');
    } else {
      dial.limit.setAttribute('visibility', 'hidden');
    }
  }

  // ---- one gauge

  function gaugeParts(metric) {
    const section = document.querySelector(`.gauge[data-metric="${metric}"]`);
    if (!section) return null;
    return {
      section,
      num: section.querySelector(`[data-value="${metric}"]`),
      unit: section.querySelector(`[data-unit="${metric}"]`),
      level: section.querySelector(`[data-level-of="${metric}"]`),
      age: section.querySelector(`[data-age-of="${metric}"]`),
    };
  }

  /** Shows one value: number, unit, age, stale or missing; returns its freshness. */
  function showValue(metric, entry, kind, now) {
    const g = gaugeParts(metric);
    if (!g) return null;
    const shown = display(kind, entry ? entry.value : null, dash.units);
    const f = freshness(entry && isNum(entry.value) ? entry : null, now, true);
    put(g.num, f.none ? '—' : fixed(shown.value, shown.digits));
    put(g.unit, shown.unit);
    put(g.age, f.text);
    const at = entry && !f.none ? String(entry.at) : '';
    if (g.num.dataset.at !== at) g.num.dataset.at = at;
    flag(g.section, 'is-stale', f.stale);
    flag(g.section, 'is-empty', f.none);
    return { shown, fresh: f };
  }

  function showLevel(metric, id) {
    const g = gaugeParts(metric);
    if (!g || !g.level) return null;
    const lv = metricLevel(id, metric);
    flag(g.section, 'is-warning', lv && lv.level === 'warning');
    flag(g.section, 'is-critical', lv && lv.level === 'critical');
    if (!lv) {
      put(g.level, '');
      g.level.className = 'level';
      return null;
    }
    let words = LEVELS[lv.level].text;
    if (isNum(lv.sigma)) words += ` ${lv.sigma < 0 ? '−' : '+'}${Math.abs(lv.sigma).toFixed(1)}σ`;
    put(g.level, words);
    const cls = `level level-${lv.level}`;
    if (g.level.className !== cls) g.level.className = cls;
    return lv;
  }

  /** Numbered things (tanks, batteries) under `prefix`: [[id, fields]], ids in order. */
  function numbered(prefix) {
    const found = new Map();
    for (const [p, e] of dash.live) {
      if (!p.startsWith(prefix)) continue;
      const rest = p.slice(prefix.length);
      const dot = rest.indexOf('.');
      if (dot < 1) continue;
      const id = rest.slice(0, dot);
      if (!found.has(id)) found.set(id, {});
      found.get(id)[rest.slice(dot + 1)] = e;
    }
    return [...found.entries()].sort((a, b) => engineRank(a[0]) - engineRank(b[0]) || a[0].localeCompare(b[0]));
  }

  function fillList(id, rows) {
    const ul = $(id);
    const signature = JSON.stringify(rows);
    if (ul.dataset.shown === signature) return;
    ul.dataset.shown = signature;
    ul.replaceChildren(
      ...rows.map((r) => {
        const li = document.createElement('li');
        li.append(span(r[0], 'list-name'), span(r[1], r[2] ? 'list-value is-stale' : 'list-value'));
        return li;
      }),
    );
  }

  function drawTanks(now) {
    const tanks = numbered('tanks.fuel.').filter(([, t]) => t.currentLevel);
    const first = tanks.length ? tanks[0][1].currentLevel : null;
    const r = showValue('fuelLevel', first, 'ratio', now);
    setDial('fuelLevel', r.shown, null, null, null);
    const rows = [];
    for (const [id, t] of tanks) {
      const level = display('ratio', t.currentLevel.value, dash.units);
      const cap = t.capacity && isNum(t.capacity.value) && t.capacity.value > 0 ? t.capacity.value : null;
      let words = `${fixed(level.value, 0)} %`;
      if (cap !== null && isNum(t.currentLevel.value)) {
        const left = display('volume', cap * t.currentLevel.value, dash.units);
        const all = display('volume', cap, dash.units);
        words = `${tanks.length > 1 ? `${words}, ` : ''}about ${fixed(left.value, 0)} of ${fixed(all.value, 0)} ${all.unit}`;
      }
      if (tanks.length > 1 || cap !== null) rows.push([`Tank ${id}`, words, now - t.currentLevel.at >= STALE_MS]);
    }
    fillList('tank-list', rows);
  }

  function drawBatteries(now) {
    const batteries = numbered('electrical.batteries.').filter(([, b]) => b.voltage);
    const r = showValue('batteryVoltage', batteries.length ? batteries[0][1].voltage : null, 'voltage', now);
    const rows =
      batteries.length > 1
        ? batteries.map(([id, b]) => [`Battery ${id}`, `${fixed(b.voltage.value, 1)} V`, now - b.voltage.at >= STALE_MS])
        : [];
    fillList('battery-list', rows);
    return r;
  }

  function engineStateText(id) {
    const e = apiEngine(id);
    const bits = [];
    if (e && e.running === true) bits.push('Running');
    if (e && e.running === false) bits.push('Stopped');
    const band = { idle: 'at idle', cruise: 'at cruise', wot: 'at wide open throttle' }[e && e.band];
    if (band) bits.push(band);
    return bits.join(' ');
  }

  function baselineText() {
    const b = dash.current && dash.current.baseline;
    if (!b || typeof b !== 'object') return '';
    if (b.state === 'none') return 'No baseline of normal values yet: levels start once one is recorded.';
    if (b.state === 'recording') {
      const ends = formatDate(b.ends);
      return ends === NA ? 'Recording the baseline of normal values.' : `Recording the baseline of normal values until ${ends}.`;
    }
    return '';
  }

  function drawDashboard() {
    const now = Date.now();
    const ids = engineIds();
    if (!ids.includes(dash.shown)) {
      const kept = storedEngine();
      dash.shown = ids.includes(kept) ? kept : ids[0] || null;
    }
    const id = dash.shown;
    const alerts = drawAlerts(ids);
    drawEngineSwitch(ids, alerts);

    const engine = $('engine');
    if (engine.dataset.engine !== (id || '')) engine.dataset.engine = id || '';
    put($('engine-name'), id ? engineName(id, ids) : 'Engine');
    const state = id ? engineStateText(id) : '';
    put($('engine-state'), state);
    put($('engine-baseline'), baselineText());

    let newest = 0;
    for (const metric of ['revolutions', 'oilPressure', 'temperature', 'alternatorVoltage', 'fuelRate', 'runTime']) {
      const def = ENGINE_METRICS[metric];
      const entry = id ? dash.live.get(`propulsion.${id}.${def.path}`) : null;
      if (entry && isNum(entry.value)) newest = Math.max(newest, entry.at);
      const r = showValue(metric, entry, def.kind, now);
      const lv = id ? showLevel(metric, id) : showLevel(metric, '');
      if (DIAL_KINDS[metric]) {
        const lim = lv && lv.limit && typeof lv.limit === 'object' && isNum(lv.limit.value) ? lv.limit : null;
        const limShown = lim ? display(def.kind, lim.value, dash.units).value : null;
        setDial(metric, r.shown, limShown, lim ? lim.kind : null, lv ? lv.level : null);
      }
    }
    drawTanks(now);
    drawBatteries(now);

    const waitedLong = dash.link === 'open' && now - dash.openedAt >= STALE_MS;
    const words = linkWords(dash.link, newest > 0, now - newest >= STALE_MS, waitedLong, 'engine', dash.locked);
    showLink($('dash-link'), words);
    showNote('dash', words[0], "No data from the engine has arrived. Check that the engine's instruments are switched on and that the NMEA 2000 network is powered.");
    // An engine shown for the first time has its last hour fetched at once.
    if (id && id !== dash.trendsAskedFor) {
      dash.trendsAskedFor = id;
      loadTrends();
    }
    if (trendsKey() !== dash.trendsDrawn) drawTrends();
  }

  function queueDraw() {
    if (dash.drawQueued) return;
    dash.drawQueued = true;
    window.requestAnimationFrame(() => {
      dash.drawQueued = false;
      drawDashboard();
    });
  }

  // ---- trends

  /** Draws the last hour of `points` ([[ms, SI]]) as a sparkline into `box`. */
  function drawSparkline(box, name, kind, trend, now) {
    const points = trend && Array.isArray(trend.points) ? trend.points.filter((p) => Array.isArray(p) && isNum(p[0]) && isNum(p[1])) : [];
    const shown = points.map(([t, v]) => [t, display(kind, v, dash.units).value]);
    const unit = display(kind, 0, dash.units);
    let caption;
    const parts = [];
    if (!trend) caption = 'Trend loading…';
    else if (trend.failed) caption = 'Trend not available';
    else if (!shown.length) caption = 'No trend yet';
    if (!caption) {
      let lo = Math.min(...shown.map((p) => p[1]));
      let hi = Math.max(...shown.map((p) => p[1]));
      const loText = fixed(lo, unit.digits);
      const hiText = fixed(hi, unit.digits);
      caption = loText === hiText ? `Last hour: steady at ${loText} ${unit.unit}` : `Last hour: ${loText} to ${hiText} ${unit.unit}`;
      const pad = Math.max((hi - lo) * 0.1, 10 ** -unit.digits);
      lo -= pad;
      hi += pad;
      const W = 300;
      const H = 40;
      const x = (t) => Math.min(W, Math.max(0, ((t - (now - TREND_SPAN_MS)) / TREND_SPAN_MS) * W));
      const y = (v) => H - 2 - ((v - lo) / (hi - lo)) * (H - 4);
      parts.push(svgEl('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: 'spark-base', 'vector-effect': 'non-scaling-stroke' }));
      if (shown.length === 1) {
        parts.push(svgEl('circle', { cx: x(shown[0][0]).toFixed(1), cy: y(shown[0][1]).toFixed(1), r: 3, class: 'spark-dot' }));
      } else {
        const pts = shown.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
        parts.push(svgEl('polyline', { points: pts, class: 'spark-line', 'vector-effect': 'non-scaling-stroke' }));
      }
    }
    const signature = JSON.stringify([caption, parts.map((p) => p.getAttribute('points') || p.getAttribute('cx'))]);
    if (box.dataset.shown === signature) return;
    box.dataset.shown = signature;
    const children = [];
    if (parts.length) {
      const svg = svgEl('svg', { viewBox: '0 0 300 40', preserveAspectRatio: 'none', class: 'spark-svg', role: 'img', 'aria-label': `${name}, ${caption.charAt(0).toLowerCase()}${caption.slice(1)}` });
      svg.append(...parts);
      children.push(svg);
    }
    const p = document.createElement('p');
    p.className = 'spark-caption';
    p.textContent = caption;
    if (parts.length) p.setAttribute('aria-hidden', 'true');
    children.push(p);
    box.replaceChildren(...children);
  }

  /** What the sparklines shown were drawn for: the engine, its history and the units. */
  function trendsKey() {
    return JSON.stringify([dash.shown, dash.trendEngine, dash.units]);
  }

  function drawTrends() {
    const id = dash.shown;
    const now = Date.now();
    dash.trendsDrawn = trendsKey();
    for (const metric of TREND_METRICS) {
      const box = document.querySelector(`[data-spark="${metric}"]`);
      if (!box) continue;
      const def = ENGINE_METRICS[metric];
      const trend = id && dash.trendEngine === id ? dash.trends.get(metric) : null;
      drawSparkline(box, def.name, def.kind, id ? trend : { points: [] }, now);
    }
  }

  async function loadTrends() {
    const id = dash.shown;
    if (!id) {
      drawTrends();
      return;
    }
    const answers = await Promise.all(
      TREND_METRICS.map((metric) => api(`/api/engine/history?engine=${encodeURIComponent(id)}&metric=${encodeURIComponent(metric)}&minutes=60`)),
    );
    if (dash.shown !== id) return; // another engine was chosen meanwhile
    TREND_METRICS.forEach((metric, i) => {
      const r = answers[i];
      const d = r.success ? engineAnswer(r) : null;
      dash.trends.set(metric, d && Array.isArray(d.points) ? { points: d.points } : { failed: true });
    });
    dash.trendEngine = id;
    drawTrends();
  }

  // ---- the page

  function dashboardValue(path, value, at) {
    if (path.startsWith('notifications.propulsion.')) {
      const m = /^notifications\.propulsion\.([^.]+)\.(.+)$/.exec(path);
      if (!m) return;
      const v = value && typeof value === 'object' ? value : {};
      // The path names the value's own path: fuel.rate is the metric fuelRate.
      const metric = METRIC_OF_PATH[m[2]] || m[2];
      dash.notes.set(`${m[1]}.${metric}`, {
        engine: m[1],
        metric,
        level: NOTE_LEVELS[v.state] || (value === null ? 'normal' : null),
        message: v.message,
        since: new Date(at).toISOString(),
        at: Date.now(),
      });
      queueDraw();
      return;
    }
    if (path.startsWith('propulsion.') || path.startsWith('tanks.fuel.') || path.startsWith('electrical.batteries.')) {
      dash.live.set(path, { value, at });
      queueDraw();
    }
  }

  async function loadCurrent() {
    const r = await api('/api/engine/current');
    // Signed out where live data is not public: the note under the link line says so.
    dash.locked = !r.success && r.error.code === 'unauthorized';
    if (!r.success) {
      setMessage('engine-error', dash.locked ? '' : `Engine levels and alerts are not available: ${r.error.message}`);
      drawDashboard();
      return;
    }
    setMessage('engine-error', '');
    const d = engineAnswer(r);
    const units = ownerUnits(d.units);
    dash.units = units;
    dash.current = d;
    dash.currentAt = Date.now();
    drawDashboard();
  }

  function dashboardPage() {
    every(HEALTH_EVERY_MS, loadHealthStrip);
    drawDashboard();
    signalkStream(
      [
        { path: 'propulsion.*', period: 1000 },
        { path: 'electrical.batteries.*', period: 1000 },
        { path: 'tanks.*', period: 1000 },
        { path: 'notifications.*', policy: 'instant' },
      ],
      dashboardValue,
      (state) => {
        dash.link = state;
        if (state === 'open') dash.openedAt = Date.now();
        drawDashboard();
      },
    );
    every(CURRENT_EVERY_MS, loadCurrent);
    every(HEAL_EVERY_MS, loadHealNotices);
    setInterval(() => {
      if (dash.shown && !document.hidden) loadTrends();
    }, TREND_EVERY_MS);
    setInterval(() => {
      if (!document.hidden) drawDashboard();
    }, 1000);
  }

  async function loadHealthStrip() {
    const r = await api('/api/health');
    if (r.success) {
      const h = r.data;
      const cpu = h.cpu && typeof h.cpu === 'object' ? h.cpu : {};
      setText('strip-cpu-temp', formatTemperature(cpu.temperature_c));
      const m = h.memory && typeof h.memory === 'object' ? h.memory : {};
      setText('strip-memory', formatPercent(m.used_percent));
      setMessage('strip-error', '');
    } else {
      setText('strip-cpu-temp', NA);
      setText('strip-memory', NA);
      setMessage('strip-error', r.error.message);
    }
  }

  // ---------------------------------------------------------------- navigation

  const nav = {
    live: new Map(),
    units: { ...DEFAULT_UNITS },
    link: 'connecting',
    openedAt: 0,
    locked: false,
    drawQueued: false,
    compass: null,
  };

  /** 42.478308 → "42° 28.698′ N"; longitudes get three digits of degrees. */
  function dm(deg, isLat) {
    if (!isNum(deg)) return '—';
    const thousandths = Math.round(Math.abs(deg) * 60000);
    const d = Math.floor(thousandths / 60000);
    const m = (thousandths % 60000) / 1000;
    const hemi = isLat ? (deg < 0 ? 'S' : 'N') : deg < 0 ? 'W' : 'E';
    return `${String(d).padStart(isLat ? 2 : 3, '0')}° ${m.toFixed(3).padStart(6, '0')}′ ${hemi}`;
  }

  /** Draws the compass card once: ring, ticks every 10°, the four points. */
  function buildCompass(svg) {
    const parts = [svgEl('circle', { cx: 0, cy: 0, r: 92, class: 'compass-ring' })];
    for (let d = 0; d < 360; d += 10) {
      const major = d % 30 === 0;
      const a = (d * Math.PI) / 180;
      const r0 = major ? 78 : 84;
      parts.push(
        svgEl('line', {
          x1: (r0 * Math.sin(a)).toFixed(2),
          y1: (-r0 * Math.cos(a)).toFixed(2),
          x2: (92 * Math.sin(a)).toFixed(2),
          y2: (-92 * Math.cos(a)).toFixed(2),
          class: major ? 'compass-tick major' : 'compass-tick',
        }),
      );
    }
    for (const [label, d] of [['N', 0], ['E', 90], ['S', 180], ['W', 270]]) {
      const a = (d * Math.PI) / 180;
      const t = svgEl('text', { x: (62 * Math.sin(a)).toFixed(2), y: (-62 * Math.cos(a) + 6).toFixed(2), class: 'compass-label', 'text-anchor': 'middle' });
      t.textContent = label;
      parts.push(t);
    }
    const cog = svgEl('g', { visibility: 'hidden' });
    cog.append(svgEl('line', { x1: 0, y1: 0, x2: 0, y2: -86, class: 'compass-cog' }), svgEl('circle', { cx: 0, cy: -86, r: 6, class: 'compass-cog-end' }));
    const heading = svgEl('polygon', { points: '0,-74 14,20 0,8 -14,20', class: 'compass-heading', visibility: 'hidden' });
    parts.push(cog, heading);
    svg.replaceChildren(...parts);
    return { cog, heading };
  }

  /** Turns the heading arrow and the course line; hides what is unknown. */
  function setCompass(svg, headingDeg, headingRef, cogDeg) {
    if (!nav.compass) nav.compass = buildCompass(svg);
    const turn = (el, deg) => {
      el.setAttribute('visibility', isNum(deg) ? 'visible' : 'hidden');
      if (isNum(deg)) el.setAttribute('transform', `rotate(${deg.toFixed(1)})`);
    };
    turn(nav.compass.heading, headingDeg);
    turn(nav.compass.cog, cogDeg);
    const bits = [];
    if (isNum(headingDeg)) bits.push(`heading ${bearing(headingDeg)}° ${headingRef}`);
    if (isNum(cogDeg)) bits.push(`course over ground ${bearing(cogDeg)}° true (dashed line)`);
    const label = bits.length ? `Compass, north up: ${bits.join(', ')}` : 'Compass: no heading or course yet';
    if (svg.getAttribute('aria-label') !== label) svg.setAttribute('aria-label', label);
  }

  function navEntry(path) {
    const e = nav.live.get(path);
    return e && e.value !== null && e.value !== undefined ? e : null;
  }

  function showAge(metric, entry, now) {
    const f = freshness(entry, now);
    const section = document.querySelector(`.gauge[data-metric="${metric}"]`);
    put(section.querySelector(`[data-age-of="${metric}"]`), f.text);
    flag(section, 'is-stale', f.stale);
    flag(section, 'is-empty', f.none);
    return f;
  }

  function markAt(el, entry) {
    const at = entry ? String(entry.at) : '';
    if (el.dataset.at !== at) el.dataset.at = at;
  }

  function drawNavigation() {
    const now = Date.now();
    let newest = 0;
    const seen = (e) => {
      if (e) newest = Math.max(newest, e.at);
    };

    const pos = navEntry('navigation.position');
    const p = pos && pos.value && typeof pos.value === 'object' && isNum(pos.value.latitude) && isNum(pos.value.longitude) ? pos : null;
    seen(p);
    const lat = document.querySelector('[data-value="latitude"]');
    const lon = document.querySelector('[data-value="longitude"]');
    put(lat, p ? dm(p.value.latitude, true) : '—');
    put(lon, p ? dm(p.value.longitude, false) : '—');
    markAt(lat, p);
    markAt(lon, p);
    $('nav-position').hidden = !p;
    $('nav-no-fix').hidden = Boolean(p);
    showAge('position', p, now);

    const sogEntry = navEntry('navigation.speedOverGround');
    const sog = isNum(sogEntry && sogEntry.value) ? sogEntry : null;
    seen(sog);
    const sogShown = display('speed', sog ? sog.value : null, nav.units);
    const sogEl = document.querySelector('[data-value="sog"]');
    put(sogEl, sog ? fixed(sogShown.value, sogShown.digits) : '—');
    put(document.querySelector('[data-unit="sog"]'), sogShown.unit);
    markAt(sogEl, sog);
    showAge('sog', sog, now);

    const cogEntry = navEntry('navigation.courseOverGroundTrue');
    const cog = isNum(cogEntry && cogEntry.value) ? cogEntry : null;
    seen(cog);
    const cogEl = document.querySelector('[data-value="cogTrue"]');
    put(cogEl, cog ? `${bearing(display('angle', cog.value).value)}°` : '—');
    markAt(cogEl, cog);
    showAge('cogTrue', cog, now);

    const num = (e) => (e && isNum(e.value) ? e : null);
    const ht = num(navEntry('navigation.headingTrue'));
    const hm = num(navEntry('navigation.headingMagnetic'));
    seen(ht);
    seen(hm);
    // True when it is current; magnetic otherwise; the other one beside it when known.
    const fresh = (e) => e && now - e.at < STALE_MS;
    let main = null;
    let other = null;
    if (ht && (fresh(ht) || !fresh(hm))) {
      main = ['headingTrue', ht, 'true'];
      if (hm) other = ['headingMagnetic', hm, 'Magnetic'];
    } else if (hm) {
      main = ['headingMagnetic', hm, 'magnetic'];
      if (ht) other = ['headingTrue', ht, 'True'];
    }
    const head = $('nav-heading');
    const key = main ? main[0] : 'heading';
    if (head.dataset.value !== key) head.dataset.value = key;
    put(head, main ? `${bearing(display('angle', main[1].value).value)}°` : '—');
    markAt(head, main ? main[1] : null);
    put($('nav-heading-ref'), main ? main[2] : '');
    const o = $('nav-heading-other');
    o.hidden = !other;
    const ov = $('nav-heading-other-value');
    if (other) {
      put($('nav-heading-other-label'), other[2]);
      put(ov, `${bearing(display('angle', other[1].value).value)}°${now - other[1].at >= STALE_MS ? ' (stale)' : ''}`);
      if (ov.dataset.value !== other[0]) ov.dataset.value = other[0];
    } else if (ov.dataset.value) {
      delete ov.dataset.value;
    }
    showAge('heading', main ? main[1] : null, now);
    setCompass(
      $('nav-compass'),
      main ? display('angle', main[1].value).value : null,
      main ? main[2] : '',
      cog ? display('angle', cog.value).value : null,
    );

    const waitedLong = nav.link === 'open' && now - nav.openedAt >= STALE_MS;
    const words = linkWords(nav.link, newest > 0, now - newest >= STALE_MS, waitedLong, 'navigation instruments', nav.locked);
    showLink($('nav-link'), words);
    showNote('nav', words[0], 'No data from the GPS or the compass has arrived. Check that they are switched on and connected to the NMEA 2000 network.');
  }

  function queueNavDraw() {
    if (nav.drawQueued) return;
    nav.drawQueued = true;
    window.requestAnimationFrame(() => {
      nav.drawQueued = false;
      drawNavigation();
    });
  }

  function navigationPage() {
    drawNavigation();
    signalkStream(
      [{ path: 'navigation.*', period: 1000 }],
      (path, value, at) => {
        if (!path.startsWith('navigation.')) return;
        nav.live.set(path, { value, at });
        queueNavDraw();
      },
      (state) => {
        nav.link = state;
        if (state === 'open') nav.openedAt = Date.now();
        drawNavigation();
      },
    );
    // The owner's speed unit comes with the engine data; without it, knots.
    every(UNITS_EVERY_MS, async () => {
      const r = await loadUnits(nav);
      const locked = !r.ok && r.r.error.code === 'unauthorized';
      if ((r.ok && r.changed) || locked !== nav.locked) {
        nav.locked = locked;
        drawNavigation();
      }
    });
    setInterval(() => {
      if (!document.hidden) drawNavigation();
    }, 1000);
  }

  // ---------------------------------------------------------------- self-healing

  const HEAL_EVERY_MS = 5000;
  const ZONE_EVERY_MS = 60000;
  const HEAL_RECORDS = 50;
  /** A check may restart a unit and wait for it: longer than an ordinary call. */
  const CHECK_TIMEOUT_MS = 120000;

  /** What each outcome is called, in the order the 7-day table shows them. */
  const OUTCOME_WORDS = {
    detected: 'Seen',
    notified: 'Owner told',
    reported: 'Reported',
    fixed: 'Fixed',
    failed: 'Did not help',
    escalated: 'Owner must act',
    cleared: 'Went away',
  };
  const OUTCOME_CLASS = { fixed: 'state-on', cleared: 'state-on', failed: 'state-bad', escalated: 'state-bad' };

  /** What a rule does about a problem, in words. */
  const ACTION_WORDS = {
    restart_unit: 'Restarts the service',
    clean_disk: 'Cleans known-safe files: old exports, backups beyond those kept, the journal, the package cache',
    restart_can: 'Brings the NMEA 2000 interface down and up',
    notify: 'Tells the owner',
    report: 'Reports it with likely causes and what to check',
  };
  /** What was done, as the start of a record's last action says it. */
  const DONE_WORDS = {
    restart_unit: 'Restarted the service',
    clean_disk: 'Cleaned the disk',
    restart_can: 'Restarted the NMEA 2000 interface',
    notify: 'Told the owner',
    report: 'Reported',
    diagnosis: 'Remote diagnosis',
    escalated: 'Gave up',
    failed: 'Did not help',
  };

  const heal = {
    zone: 'UTC',
    zoneAt: 0,
    fmt: null,
    owner: false,
    /** Rule id → title, from the last answer of /healing/rules. */
    titles: {},
    /** Rules whose switch is being changed now. */
    switching: new Set(),
    checking: false,
    every: null,
    shown: { open: '', done: '', stats: '', rules: '' },
  };

  function zoneFormatter(zone) {
    try {
      return new Intl.DateTimeFormat('en-GB', {
        timeZone: zone,
        weekday: 'short',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hourCycle: 'h23',
      });
    } catch (_) {
      return null; // a zone this browser does not know
    }
  }

  /** The boat's time zone, as the device names it (with the boat log's answer). */
  async function loadZone() {
    if (heal.fmt && Date.now() - heal.zoneAt < ZONE_EVERY_MS) return;
    heal.zoneAt = Date.now();
    const r = await api('/api/boatlog?limit=1');
    const zone = r.success && typeof r.data.time_zone === 'string' && r.data.time_zone ? r.data.time_zone : 'UTC';
    const fmt = zoneFormatter(zone);
    heal.zone = fmt ? zone : 'UTC';
    heal.fmt = fmt || zoneFormatter('UTC');
  }

  /** An RFC 3339 time on the boat's clock, in parts; null when it is not a time. */
  function boatClock(ms) {
    if (!isNum(ms) || !heal.fmt) return null;
    const p = {};
    for (const part of heal.fmt.formatToParts(new Date(ms))) p[part.type] = part.value;
    return { day: `${p.year}-${p.month}-${p.day}`, weekday: p.weekday, hm: `${p.hour}:${p.minute}`, hms: `${p.hour}:${p.minute}:${p.second}` };
  }

  function parseTime(iso) {
    const t = typeof iso === 'string' ? Date.parse(iso) : NaN;
    return Number.isFinite(t) ? t : null;
  }

  /** "Today 14:05", "Yesterday 09:12" or "Mon 2026-11-23 09:12", on the boat's clock. */
  function boatWhen(iso, seconds) {
    const t = parseTime(iso);
    const b = boatClock(t);
    if (!b) return NA;
    const clock = seconds ? b.hms : b.hm;
    const now = Date.now();
    const today = boatClock(now);
    const yesterday = boatClock(now - 86400000);
    if (today && b.day === today.day) return `Today ${clock}`;
    if (yesterday && b.day === yesterday.day) return `Yesterday ${clock}`;
    return `${b.weekday} ${b.day} ${clock}`;
  }

  function ruleTitle(id) {
    if (typeof id !== 'string' || !id) return NA;
    return heal.titles[id] || featureName(id);
  }

  /** "notify: the owner was told" → "Told the owner: the owner was told". */
  function lastActionText(s) {
    if (typeof s !== 'string' || !s.trim()) return 'None yet';
    const m = /^([a-z_]+): (.*)$/s.exec(s.trim());
    if (!m) return s.trim();
    const what = DONE_WORDS[m[1]] || OUTCOME_WORDS[m[1]] || m[1];
    const result = m[2].replace(/^;\s*/, '');
    return result && result !== m[1] ? `${what}: ${result}` : what;
  }

  /** Advice lines sorted into likely causes, what to check, and anything else. */
  function sortAdvice(advice) {
    const out = { causes: [], checks: [], other: [] };
    for (const a of Array.isArray(advice) ? advice : []) {
      if (typeof a !== 'string' || !a.trim()) continue;
      const t = a.trim();
      if (/^Likely cause:/i.test(t)) out.causes.push(t.replace(/^Likely cause:\s*/i, ''));
      else if (/^Check:/i.test(t)) out.checks.push(t.replace(/^Check:\s*/i, ''));
      else out.other.push(t);
    }
    return out;
  }

  function adviceList(heading, items) {
    const box = document.createElement('div');
    box.className = 'advice';
    const h = document.createElement('h4');
    h.textContent = heading;
    const ul = document.createElement('ul');
    for (const i of items) ul.append(cell('li', i));
    box.append(h, ul);
    return box;
  }

  /** Open problems, the escalated ones (the owner must act) first, oldest first within. */
  function openProblems(list) {
    const rank = (o) => (o.state === 'escalated' ? 0 : 1);
    return (Array.isArray(list) ? list : [])
      .filter((o) => o && typeof o === 'object')
      .sort((a, b) => rank(a) - rank(b) || (parseTime(a.since) || 0) - (parseTime(b.since) || 0));
  }

  function problemItem(o, now) {
    const escalated = o.state === 'escalated';
    const li = document.createElement('li');
    li.className = `problem${escalated ? ' is-escalated' : ''}`;
    li.dataset.rule = text(o.rule);
    const head = document.createElement('h3');
    head.className = 'problem-head';
    head.append(span(escalated ? 'Owner must act' : 'Open', 'problem-state'), span(typeof o.title === 'string' && o.title ? o.title : ruleTitle(o.rule), 'problem-title'));
    li.append(head);
    li.append(cell('p', `Seen: ${text(o.seen)}`, 'problem-seen'));
    const since = parseTime(o.since);
    const age = since === null ? '' : now - since < 60000 ? ' (under a minute ago)' : ` (${ageText(now - since)} ago)`;
    const facts = document.createElement('dl');
    facts.className = 'facts problem-facts';
    facts.append(cell('dt', 'Since'), cell('dd', `${boatWhen(o.since)}${age}`), cell('dt', 'Last action'), cell('dd', lastActionText(o.last_action)));
    li.append(facts);
    if (escalated) {
      li.append(cell('p', 'The helm computer has done all it may about this: the owner must look at it.', 'problem-act'));
    }
    const advice = sortAdvice(o.advice);
    if (advice.causes.length) li.append(adviceList('Likely causes', advice.causes));
    if (advice.checks.length) li.append(adviceList('What to check', advice.checks));
    if (advice.other.length) li.append(adviceList('Advice', advice.other));
    return li;
  }

  function drawOpen(list) {
    const open = openProblems(list);
    const now = Date.now();
    // Ages are in minutes at the finest after the first: redrawn when a minute passes.
    const signature = JSON.stringify([open, heal.zone, Math.floor(now / 60000)]);
    if (signature === heal.shown.open) return;
    heal.shown.open = signature;
    const ul = $('open-list');
    ul.replaceChildren(...open.map((o) => problemItem(o, now)));
    ul.hidden = open.length === 0;
    const empty = $('open-empty');
    empty.hidden = open.length > 0;
    put(empty, 'No problems: everything the rules watch is as it should be.');
  }

  function recordDetails(r) {
    const td = cell('td', text(r.seen));
    // A cleaning that found nothing to clean leaves its list empty before the "; ".
    const result = typeof r.result === 'string' ? r.result.trim().replace(/^;\s*/, '') : '';
    if (result) {
      const what = typeof r.action === 'string' && r.action ? DONE_WORDS[r.action] || r.action : 'Result';
      td.append(span(`${what}: ${result}`, 'block record-result'));
    }
    return td;
  }

  function drawDone(records) {
    const list = (Array.isArray(records) ? records : []).filter((r) => r && typeof r === 'object');
    const today = boatClock(Date.now());
    const signature = JSON.stringify([list, heal.zone, heal.titles, today && today.day]);
    if (signature === heal.shown.done) return;
    heal.shown.done = signature;
    const rows = list.map((r) => {
      const tr = document.createElement('tr');
      const when = cell('th', boatWhen(r.at, true), 'nowrap');
      tr.append(when, cell('td', ruleTitle(r.rule)), cell('td', OUTCOME_WORDS[r.outcome] || text(r.outcome), OUTCOME_CLASS[r.outcome]), recordDetails(r));
      return tr;
    });
    $('done-list').replaceChildren(...rows);
    $('done-table').hidden = rows.length === 0;
    const empty = $('done-empty');
    empty.hidden = rows.length > 0;
    put(empty, 'Nothing done in the last 7 days.');
  }

  function countCell(tag, n, outcome) {
    const v = isNum(n) && n > 0 ? n : 0;
    const c = cell(tag, String(v), v > 0 ? OUTCOME_CLASS[outcome] : 'state-off');
    if (tag === 'th') c.scope = 'row';
    return c;
  }

  function drawStats(s) {
    const rules = s.rules && typeof s.rules === 'object' ? s.rules : {};
    const total = s.total && typeof s.total === 'object' ? s.total : {};
    const signature = JSON.stringify([rules, total, s.since, heal.titles, heal.zone]);
    if (signature === heal.shown.stats) return;
    heal.shown.stats = signature;
    const outcomes = Object.keys(OUTCOME_WORDS);
    const any = outcomes.some((o) => isNum(total[o]) && total[o] > 0);
    // In the order of the rules list, then any the page does not know yet.
    const known = Object.keys(heal.titles).filter((id) => id in rules);
    const ids = [...known, ...Object.keys(rules).filter((id) => !known.includes(id))];
    const rows = ids.map((id) => {
      const counts = rules[id] && typeof rules[id] === 'object' ? rules[id] : {};
      const tr = document.createElement('tr');
      tr.append(cell('th', ruleTitle(id)));
      for (const o of outcomes) tr.append(countCell('td', counts[o], o));
      return tr;
    });
    $('stats-rules').replaceChildren(...rows);
    const foot = document.createElement('tr');
    foot.append(cell('th', 'All rules'));
    for (const o of outcomes) foot.append(countCell('td', total[o], o));
    $('stats-total').replaceChildren(foot);
    const days = isNum(s.days) ? s.days : 7;
    put($('stats-caption'), `How often each rule saw a problem in the last ${days} days (since ${boatWhen(s.since)}), and what came of it`);
    $('stats-table').hidden = !any;
    const empty = $('stats-empty');
    empty.hidden = any;
    put(empty, `No problem was seen in the last ${days} days.`);
  }

  /** One sentence on what a rule watches, from its settings. */
  function ruleWatches(r) {
    const s = r.settings && typeof r.settings === 'object' ? r.settings : {};
    const list = (v) => (Array.isArray(v) ? v.filter((x) => typeof x === 'string' && x) : []);
    switch (r.id) {
      case 'unit_failed': {
        const u = list(s.units);
        return u.length ? `Watches ${u.join(', ')}.` : 'Watches no service.';
      }
      case 'disk_space': {
        const m = list(s.mounts);
        const min = isNum(s.min_free_percent) ? ` below ${s.min_free_percent} % free` : '';
        return m.length ? `Watches ${m.join(', ')}${min}.` : 'Watches no partition.';
      }
      case 'cpu_temperature':
        return isNum(s.max_c) ? `Above ${s.max_c} °C.` : '';
      case 'memory_pressure':
        return isNum(s.max_some_avg60) ? `Tasks waiting on memory more than ${s.max_some_avg60} % of a minute.` : '';
      case 'n2k_silent':
        return isNum(s.after_secs) ? `No data for ${formatDuration(s.after_secs)} while the engine runs.` : '';
      default:
        return '';
    }
  }

  function actionText(r) {
    const s = r.settings && typeof r.settings === 'object' ? r.settings : {};
    let a = ACTION_WORDS[r.action] || text(r.action);
    if ((r.action === 'restart_unit' || r.action === 'restart_can') && isNum(s.max_restarts_per_hour)) {
      a += `, at most ${s.max_restarts_per_hour} times an hour, then asks the owner`;
    }
    return `${a}.`;
  }

  function switchButton(r) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'switch';
    b.setAttribute('role', 'switch');
    b.dataset.rule = r.id;
    b.setAttribute('aria-labelledby', `rule-${r.id}`);
    const track = document.createElement('span');
    track.className = 'switch-track';
    track.setAttribute('aria-hidden', 'true');
    track.append(span('', 'switch-thumb'));
    const word = span('', 'switch-word');
    word.setAttribute('aria-hidden', 'true');
    b.append(track, word);
    b.addEventListener('click', () => flipRule(b));
    return b;
  }

  function ruleItem(r) {
    const li = document.createElement('li');
    li.className = 'rule-item';
    li.dataset.rule = r.id;
    const words = document.createElement('div');
    words.className = 'rule-words';
    const h = document.createElement('h3');
    h.id = `rule-${r.id}`;
    words.append(h, cell('p', '', 'rule-action'), cell('p', '', 'rule-open'));
    li.append(words, switchButton(r));
    return li;
  }

  /** Brings the switches up to date in place: focus stays where it was. */
  function drawRules(rules) {
    const list = (Array.isArray(rules) ? rules : []).filter((r) => r && typeof r.id === 'string' && /^[a-z0-9_]+$/.test(r.id));
    const ul = $('rule-list');
    const ids = list.map((r) => r.id).join(' ');
    if (ids !== heal.shown.rules) {
      heal.shown.rules = ids;
      ul.replaceChildren(...list.map(ruleItem));
    }
    for (const r of list) {
      const li = ul.querySelector(`li[data-rule="${r.id}"]`);
      put(li.querySelector('h3'), text(r.title));
      put(li.querySelector('.rule-action'), [actionText(r), ruleWatches(r)].filter(Boolean).join(' '));
      const open = isNum(r.open) ? r.open : 0;
      put(li.querySelector('.rule-open'), open ? `${open} problem${open === 1 ? '' : 's'} open now.` : '');
      li.querySelector('.rule-open').hidden = !open;
      const b = li.querySelector('button');
      const on = r.enabled === true;
      if (!heal.switching.has(r.id) && b.getAttribute('aria-checked') !== String(on)) b.setAttribute('aria-checked', String(on));
      put(b.querySelector('.switch-word'), b.getAttribute('aria-checked') === 'true' ? 'On' : 'Off');
    }
    ownerControls();
  }

  /** The switches and "Check now" answer the owner; others are told how to sign in. */
  function ownerControls() {
    const locked = !heal.owner;
    const controls = [...document.querySelectorAll('#rule-list button[role="switch"]'), $('heal-check')];
    for (const b of controls) {
      if (locked) {
        b.setAttribute('aria-disabled', 'true');
        const hint = b.id === 'heal-check' ? 'rules-hint heal-check-hint' : 'rules-hint';
        if (b.getAttribute('aria-describedby') !== hint) b.setAttribute('aria-describedby', hint);
      } else {
        b.removeAttribute('aria-disabled');
        if (b.id === 'heal-check') b.setAttribute('aria-describedby', 'heal-check-hint');
        else b.removeAttribute('aria-describedby');
      }
    }
    $('rules-hint').hidden = !locked;
  }

  function healMessage(error, note) {
    setMessage('heal-action-error', error || '');
    setMessage('heal-note', note || '');
  }

  async function flipRule(b) {
    const id = b.dataset.rule;
    if (!heal.owner) {
      healMessage('', 'Only the owner can switch rules on or off: sign in on the Settings page.');
      return;
    }
    if (heal.switching.has(id)) return;
    const on = b.getAttribute('aria-checked') !== 'true';
    heal.switching.add(id);
    // Shown at once; put back when the device refuses.
    b.setAttribute('aria-checked', String(on));
    put(b.querySelector('.switch-word'), on ? 'On' : 'Off');
    b.setAttribute('aria-busy', 'true');
    const r = await api(`/healing/rules/${encodeURIComponent(id)}`, { method: 'PUT', body: { enabled: on } });
    heal.switching.delete(id);
    b.removeAttribute('aria-busy');
    const title = ruleTitle(id);
    if (!r.success) {
      b.setAttribute('aria-checked', String(!on));
      put(b.querySelector('.switch-word'), on ? 'Off' : 'On');
      if (r.error.code === 'unauthorized') heal.owner = false;
      healMessage(`“${title}” was not switched ${on ? 'on' : 'off'}: ${r.error.message}`);
      ownerControls();
      return;
    }
    healMessage('', `“${title}” is switched ${on ? 'on' : 'off'}.${on ? '' : ' Its open problems go at the next check.'}`);
    showRules(r.data);
  }

  async function checkNow() {
    const b = $('heal-check');
    if (!heal.owner) {
      healMessage('', 'Only the owner can start a check: sign in on the Settings page.');
      return;
    }
    if (heal.checking) return;
    heal.checking = true;
    b.setAttribute('aria-busy', 'true');
    b.textContent = 'Checking…';
    healMessage('', '');
    try {
      const r = await api('/healing/check', { method: 'POST', body: {}, timeout: CHECK_TIMEOUT_MS });
      if (!r.success) {
        if (r.error.code === 'unauthorized') heal.owner = false;
        healMessage(`The check did not run: ${r.error.message}`);
        ownerControls();
        return;
      }
      const c = r.data;
      const open = Array.isArray(c.open) ? c.open.length : 0;
      const recorded = Array.isArray(c.recorded) ? c.recorded.length : 0;
      drawOpen(c.open);
      setText('heal-status', statusText(c.at, heal.every));
      healMessage(
        '',
        `Checked ${boatWhen(c.at, true).replace(/^Today /, 'at ')}: ${open ? `${open} problem${open === 1 ? '' : 's'} open` : 'no problems'}, ${recorded ? `${recorded} thing${recorded === 1 ? '' : 's'} recorded` : 'nothing new recorded'}.`,
      );
      await loadHealing();
    } finally {
      heal.checking = false;
      b.removeAttribute('aria-busy');
      b.textContent = 'Check now';
    }
  }

  function statusText(lastCheck, every) {
    const last = parseTime(lastCheck) === null ? 'No check yet' : `Last check ${boatWhen(lastCheck, true).replace(/^Today /, 'at ')}`;
    const often = isNum(every) ? `; the rules are checked every ${formatDuration(every)}` : '';
    return `${last}${often}. Times are the boat's local time (${heal.zone}).`;
  }

  function showRules(d) {
    const rules = Array.isArray(d.rules) ? d.rules : [];
    heal.titles = {};
    for (const r of rules) if (r && typeof r.id === 'string' && typeof r.title === 'string') heal.titles[r.id] = r.title;
    heal.every = isNum(d.check_every_secs) ? d.check_every_secs : heal.every;
    drawRules(rules);
    drawOpen(d.open);
    setText('heal-status', statusText(d.last_check, heal.every));
  }

  async function loadHealing() {
    await loadZone();
    const [session, rules, history, stats] = await Promise.all([
      api('/api/session'),
      api('/healing/rules'),
      api(`/healing/history?limit=${HEAL_RECORDS}`),
      api('/healing/stats'),
    ]);
    heal.owner = session.success && session.data.authenticated === true;
    const locked = !rules.success && rules.error.code === 'unauthorized';
    $('heal-signin').hidden = heal.owner;
    put($('heal-signin-text'), locked
      ? 'On this device what self-healing found and did is for the signed-in owner only.'
      : 'Signed out: you see what was found and done. To switch rules on or off, or to check now, sign in as the owner.');
    const failed = [rules, history, stats].find((r) => !r.success);
    setMessage('heal-error', failed && !locked ? `Self-healing is not available: ${failed.error.message}` : '');
    if (rules.success) showRules(rules.data);
    else {
      heal.shown.open = '';
      $('open-list').hidden = true;
      $('open-empty').hidden = false;
      put($('open-empty'), NA);
      put($('heal-status'), locked ? 'Signed out: no self-healing data.' : NA);
      ownerControls();
    }
    if (history.success) drawDone(history.data.records);
    else {
      heal.shown.done = '';
      $('done-table').hidden = true;
      $('done-empty').hidden = false;
      put($('done-empty'), NA);
    }
    if (stats.success) drawStats(stats.data);
    else {
      heal.shown.stats = '';
      $('stats-table').hidden = true;
      $('stats-empty').hidden = false;
      put($('stats-empty'), NA);
    }
  }

  function healingPage() {
    $('heal-check').addEventListener('click', checkNow);
    ownerControls();
    every(HEAL_EVERY_MS, loadHealing);
  }

  // ---- on the dashboard: open problems as notices, beside the engine alerts

  async function loadHealNotices() {
    const r = await api('/healing/rules');
    // Signed out where the data is the owner's, or an older device: no notices.
    const open = r.success ? openProblems(r.data.open) : [];
    const rows = open.map((o) => ({
      escalated: o.state === 'escalated',
      title: typeof o.title === 'string' && o.title ? o.title : featureName(text(o.rule)),
      seen: text(o.seen),
    }));
    const signature = JSON.stringify(rows);
    if (signature === dash.healShown) return;
    dash.healShown = signature;
    const box = $('heal-notices');
    if (!box) return;
    const items = rows.map((n) => {
      const li = document.createElement('li');
      li.className = `alert-item heal-item ${n.escalated ? 'level-critical' : 'level-info'}`;
      li.append(span(n.escalated ? 'OWNER MUST ACT' : 'NOTICE', 'alert-level'), span(`${n.title}: ${n.seen}`, 'alert-text'));
      return li;
    });
    $('heal-notice-list').replaceChildren(...items);
    const escalated = rows.filter((n) => n.escalated).length;
    put(
      $('heal-notices-count'),
      rows.length ? `${rows.length} problem${rows.length === 1 ? '' : 's'} open${escalated ? `, ${escalated} needing the owner` : ''}` : '',
    );
    box.hidden = rows.length === 0;
  }


  // ---------------------------------------------------------------- on-screen keyboard

  // The helm screen has no keyboard: a text field that gets the focus there opens this one.
  // The page gains room below its content as tall as the keyboard and scrolls the field
  // above it, so the keyboard never covers what is being typed. It is on where the page is
  // the device's own screen (http://localhost), or where `d3kos-osk` is stored as `on`.
  const OSK_KEY = 'd3kos-osk';
  const OSK_LAYOUTS = {
    letters: [
      ['1', '2', '3', '4', '5', '6', '7', '8', '9', '0'],
      ['q', 'w', 'e', 'r', 't', 'y', 'u', 'i', 'o', 'p'],
      ['a', 's', 'd', 'f', 'g', 'h', 'j', 'k', 'l', '-'],
      ['{shift}', 'z', 'x', 'c', 'v', 'b', 'n', 'm', '.', '{back}'],
      ['{symbols}', '{space}', '@', '{hide}', '{enter}'],
    ],
    symbols: [
      ['1', '2', '3', '4', '5', '6', '7', '8', '9', '0'],
      ['!', '"', '#', '$', '%', '&', "'", '(', ')', '*'],
      ['+', ',', '/', ':', ';', '<', '=', '>', '?', '_'],
      ['[', '\\', ']', '^', '`', '{', '|', '}', '~', '{back}'],
      ['{letters}', '{space}', '@', '{hide}', '{enter}'],
    ],
  };
  const OSK_LABELS = {
    '{shift}': 'Shift', '{back}': 'Delete', '{symbols}': '?123', '{letters}': 'ABC',
    '{space}': 'Space', '{hide}': 'Hide', '{enter}': 'Done',
  };
  const OSK_TYPES = new Set(['text', 'password', 'search', 'email', 'url', 'tel', 'number']);

  function oskWanted() {
    if (location.hostname === 'localhost') return true;
    try {
      return window.localStorage.getItem(OSK_KEY) === 'on';
    } catch {
      return false;
    }
  }

  function isTextField(el) {
    if (!el || el.readOnly || el.disabled) return false;
    if (el.tagName === 'TEXTAREA') return true;
    return el.tagName === 'INPUT' && OSK_TYPES.has((el.getAttribute('type') || 'text').toLowerCase());
  }

  function startKeyboard() {
    if (!oskWanted()) return;
    let field = null;
    let layout = 'letters';
    let shift = false;
    const board = document.createElement('div');
    board.className = 'osk';
    board.id = 'osk';
    board.hidden = true;
    board.setAttribute('role', 'group');
    board.setAttribute('aria-label', 'On-screen keyboard');
    document.body.append(board);

    function draw() {
      const rows = OSK_LAYOUTS[layout].map((keys) => {
        const row = document.createElement('div');
        row.className = 'osk-row';
        for (const k of keys) {
          const b = document.createElement('button');
          b.type = 'button';
          // The field keeps the focus: the keys are reached by touch, not by Tab.
          b.tabIndex = -1;
          b.dataset.key = k;
          const special = OSK_LABELS[k];
          b.textContent = special || (shift ? k.toUpperCase() : k);
          b.className = special ? `osk-key osk-${k.slice(1, -1)}` : 'osk-key';
          if (k === '{shift}') b.setAttribute('aria-pressed', String(shift));
          row.append(b);
        }
        return row;
      });
      board.replaceChildren(...rows);
    }

    function insert(text) {
      const start = field.selectionStart ?? field.value.length;
      const end = field.selectionEnd ?? field.value.length;
      if (typeof field.setRangeText === 'function' && field.type !== 'number' && field.type !== 'email') {
        field.setRangeText(text, start, end, 'end');
      } else {
        field.value += text;
      }
      field.dispatchEvent(new Event('input', { bubbles: true }));
    }

    function erase() {
      const start = field.selectionStart ?? field.value.length;
      const end = field.selectionEnd ?? field.value.length;
      if (typeof field.setRangeText === 'function' && field.type !== 'number' && field.type !== 'email') {
        if (start !== end) field.setRangeText('', start, end, 'end');
        else if (start > 0) field.setRangeText('', start - 1, start, 'end');
      } else {
        field.value = field.value.slice(0, -1);
      }
      field.dispatchEvent(new Event('input', { bubbles: true }));
    }

    /** Room below the page as tall as the keyboard, and the field scrolled above it. */
    function keepVisible() {
      if (!field || board.hidden) return;
      const height = board.getBoundingClientRect().height;
      document.body.style.paddingBottom = `${Math.ceil(height) + 16}px`;
      const r = field.getBoundingClientRect();
      const top = window.innerHeight - height;
      const margin = 16;
      if (r.bottom > top - margin) window.scrollBy(0, r.bottom - (top - margin));
      else if (r.top < margin) window.scrollBy(0, r.top - margin);
    }

    function show(el) {
      field = el;
      board.hidden = false;
      draw();
      keepVisible();
    }

    function hide() {
      board.hidden = true;
      document.body.style.paddingBottom = '';
      field = null;
    }

    board.addEventListener('pointerdown', (e) => e.preventDefault());
    board.addEventListener('mousedown', (e) => e.preventDefault());
    board.addEventListener('click', (e) => {
      const b = e.target.closest('button[data-key]');
      if (!b || !field) return;
      const k = b.dataset.key;
      if (k === '{shift}') {
        shift = !shift;
        draw();
      } else if (k === '{symbols}' || k === '{letters}') {
        layout = k === '{symbols}' ? 'symbols' : 'letters';
        draw();
      } else if (k === '{back}') {
        erase();
      } else if (k === '{space}') {
        insert(' ');
      } else if (k === '{hide}') {
        field.blur();
        hide();
      } else if (k === '{enter}') {
        const f = field;
        hide();
        f.blur();
        if (f.tagName === 'TEXTAREA') return;
        if (f.form && typeof f.form.requestSubmit === 'function') f.form.requestSubmit();
      } else {
        insert(shift ? k.toUpperCase() : k);
        if (shift) {
          shift = false;
          draw();
        }
      }
    });
    document.addEventListener('focusin', (e) => {
      if (isTextField(e.target)) show(e.target);
      else if (!board.contains(e.target)) hide();
    });
    document.addEventListener('focusout', (e) => {
      // Focus leaving for nothing (a tap on the page's background) closes the keyboard.
      if (e.target === field && !e.relatedTarget) {
        setTimeout(() => {
          if (field && document.activeElement !== field) hide();
        }, 0);
      }
    });
    window.addEventListener('resize', keepVisible);
  }

  // ---------------------------------------------------------------- start

  function start() {
    for (const b of document.querySelectorAll('[data-theme-toggle]')) {
      b.addEventListener('click', toggleTheme);
    }
    applyTheme(currentTheme());
    startKeyboard();
    const page = document.body.dataset.page;
    if (page === 'home') homePage();
    else if (page === 'settings') settingsPage();
    else if (page === 'dashboard') dashboardPage();
    else if (page === 'navigation') navigationPage();
    else if (page === 'boatlog') boatlogPage();
    else if (page === 'settings-healing') healingPage();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();

  // For the browser console and later pages.
  window.d3kos = Object.freeze({ api, formatBytes, formatDuration, formatDate, formatNumber, text, NA });
})();
