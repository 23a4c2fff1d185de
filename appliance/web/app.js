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

  async function homePage() {
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
    unlimited_resets: 'Unlimited onboarding resets',
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
    // What needs an account (live data, backups) may answer now.
    loadHealth();
    loadBackups();
  }

  // ---- backup & restore

  const KIND_NAMES = { manual: 'Made by hand', scheduled: 'Automatic', 'pre-restore': 'Before a restore' };
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
    setText('bk-auto', st.auto === 'off' ? 'Off' : `${AUTO_NAMES[st.auto] || text(st.auto)} at ${text(st.hour)}:00 UTC, keeping ${text(st.keep)}`);
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

  function settingsPage() {
    ownerForms();
    backupForms();
    loadVersion();
    loadLicence();
    loadSession().then(loadBackups);
    every(HEALTH_EVERY_MS, loadHealth);
  }

  // ---------------------------------------------------------------- engine dashboard

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

  function dashboardPage() {
    every(HEALTH_EVERY_MS, loadHealthStrip);
  }

  // ---------------------------------------------------------------- start

  function start() {
    for (const b of document.querySelectorAll('[data-theme-toggle]')) {
      b.addEventListener('click', toggleTheme);
    }
    applyTheme(currentTheme());
    const page = document.body.dataset.page;
    if (page === 'home') homePage();
    else if (page === 'settings') settingsPage();
    else if (page === 'dashboard') dashboardPage();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();

  // For the browser console and later pages.
  window.d3kos = Object.freeze({ api, formatBytes, formatDuration, formatDate, formatNumber, text, NA });
})();
