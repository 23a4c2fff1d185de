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
        loadExports();
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
    backupForms();
    exportForms();
    loadVersion();
    loadLicence();
    loadSession().then(() => {
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
    else if (page === 'boatlog') boatlogPage();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();

  // For the browser console and later pages.
  window.d3kos = Object.freeze({ api, formatBytes, formatDuration, formatDate, formatNumber, text, NA });
})();
