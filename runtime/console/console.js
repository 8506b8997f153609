// The ctxd operator console: one page, no framework, served by the host's admin endpoint.
// Everything it shows comes from the same origin's /api/...; everything it draws is built
// with DOM calls, text always as text (message bodies and headers are untrusted).
'use strict';

(() => {
  const POLL_MS = 2000;
  const PAGE = 100;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const session = window.sessionStorage;

  // ---- small helpers -------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  // h('tr', {class: 'x', onclick: f}, kid, ...): an element with attributes and children;
  // strings become text nodes.
  function h(tag, attrs, ...kids) {
    return build(document.createElement(tag), attrs, kids);
  }
  function svg(tag, attrs, ...kids) {
    return build(document.createElementNS(SVG_NS, tag), attrs, kids);
  }
  function build(el, attrs, kids) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  const nf = new Intl.NumberFormat('en');
  const count = (n) => (typeof n === 'number' ? nf.format(n) : '—');
  function rate(v) {
    if (typeof v !== 'number' || !isFinite(v)) return '—';
    if (v === 0) return '0';
    return v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0);
  }
  function ms(v) {
    if (typeof v !== 'number' || !isFinite(v)) return '—';
    return v < 10 ? v.toFixed(1) : v.toFixed(0);
  }

  function ago(iso) {
    const t = Date.parse(iso);
    if (!t) return '—';
    const s = Math.max(0, (Date.now() - t) / 1000);
    if (s < 5) return 'just now';
    if (s < 60) return `${Math.floor(s)} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }
  function duration(seconds) {
    if (typeof seconds !== 'number' || !isFinite(seconds)) return '—';
    if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`;
    return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  }
  // a relative time with the exact one on hover
  const when = (iso) => (iso ? h('time', { datetime: iso, title: iso, text: ago(iso) }) : '—');

  // "Ns.Sub.v1:Type" → ["Type", "Ns.Sub.v1"]; a generic one,
  // "MassTransit:Fault[[Ns.Sub.v1:Type]]" → ["Fault<Type>", "MassTransit"]
  function typeParts(t) {
    if (!t) return ['(unknown type)', ''];
    const i = t.indexOf(':');
    if (i < 0) return [t, ''];
    const name = t.slice(i + 1).replace(/[\w.]+:/g, '').replaceAll('[[', '<').replaceAll(']]', '>').replaceAll('],[', ', ');
    return [name, t.slice(0, i)];
  }
  const typeCell = (t) => {
    const [name, ns] = typeParts(t);
    return h('span', { class: 'type', title: t || 'message type unknown' }, h('b', { text: name }), ns ? h('small', { text: ns }) : null);
  };

  const STATUS_TEXT = {
    unresolved: 'Unresolved',
    retry_requested: 'Retry requested',
    resolved: 'Resolved',
    archived: 'Archived',
  };
  const pill = (kind, text, title) => h('span', { class: `pill ${kind}`, text, title });

  // ---- the API -------------------------------------------------------------------------

  const token = () => session.getItem('ctxd.token') || '';
  // header values must be Latin-1; the name is for the action log only
  const operator = () => (session.getItem('ctxd.operator') || 'console').replace(/[^\x20-\x7e]/g, '?');

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, body) {
    const init = { headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      init.method = 'POST';
      init.headers['Content-Type'] = 'application/json';
      init.headers.Authorization = `Bearer ${token()}`;
      init.headers['X-Ctxd-Operator'] = operator();
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'the host does not answer');
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) throw new ApiError(res.status, (data && data.error) || `${res.status} ${res.statusText}`);
    return data;
  }

  const query = (params) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
    const s = q.toString();
    return s ? `?${s}` : '';
  };

  // ---- state ---------------------------------------------------------------------------

  const state = {
    host: null,
    reachable: true,
    route: { tab: 'endpoints' },
    status: session.getItem('ctxd.status') || 'unresolved',
    endpoint: '',
    selected: new Set(), // message ids ticked in a group's list
    offset: 0,
    lastGroup: '', // the group whose list the selection and page belong to
    seq: 0, // bumped on every navigation: answers for an older view are dropped
  };

  // ---- toasts and the confirmation dialog ----------------------------------------------

  function toast(text, kind) {
    const close = h('button', { type: 'button', class: 'x', 'aria-label': 'Dismiss', text: '×' });
    const el = h('div', { class: `toast ${kind || 'ok'}` }, h('span', { text }), close);
    close.addEventListener('click', () => el.remove());
    $('toasts').append(el);
    // results stay long enough to read; errors stay until dismissed
    if (kind !== 'error') setTimeout(() => el.remove(), kind === 'info' ? 4000 : 10000);
  }

  // Why the last poll failed, in one banner that the next good poll removes (a toast per
  // poll would pile up).
  function loadError(text) {
    let el = $('load-error');
    if (!text) {
      if (el) el.remove();
      return;
    }
    if (!el) {
      el = h('div', { class: 'toast error', id: 'load-error' });
      $('toasts').prepend(el);
    }
    el.textContent = text;
  }

  function confirmAction(title, text, okLabel, danger) {
    const dlg = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    const ok = $('confirm-ok');
    ok.textContent = okLabel;
    ok.className = danger ? 'danger' : 'primary';
    return new Promise((resolve) => {
      dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
      dlg.returnValue = 'cancel';
      dlg.showModal();
      ok.focus();
    });
  }

  // ---- actions -------------------------------------------------------------------------

  const VERB = { retry: 'Retry', archive: 'Archive', unarchive: 'Unarchive' };
  const DONE = { retry: 'retried', archive: 'archived', unarchive: 'unarchived' };
  const EXPLAIN = {
    retry: 'They go back to their endpoint through the outbox, marked as a retry. If they fail again they come back here as repeated failures.',
    archive: 'Archived messages leave the unresolved list; nothing is sent. You can unarchive them later.',
    unarchive: 'They return to the unresolved list.',
  };

  function resultText(action, r) {
    let text = `${DONE[action]} ${r.done}`;
    const skipped = r.skipped || [];
    if (skipped.length) {
      const reasons = new Map();
      for (const s of skipped) reasons.set(s.reason, (reasons.get(s.reason) || 0) + 1);
      const list = [...reasons].map(([reason, n]) => (reasons.size > 1 ? `${reason} (${n})` : reason));
      text += `, skipped ${skipped.length}: ${list.join('; ')}`;
    }
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  // what: "3 messages", "message 12", ...; selection: the POST body
  async function act(action, selection, what) {
    const ok = await confirmAction(`${VERB[action]} ${what}?`, EXPLAIN[action], VERB[action], action === 'archive');
    if (!ok) return;
    // a group or filter action takes at most 1000 rows a request and says how many are
    // left: ask again (the rows done no longer qualify) until none are, or none was done
    const total = { done: 0, skipped: [] };
    try {
      let r;
      do {
        r = await api(`/api/failed/${action}`, selection);
        total.done += r.done;
        total.skipped.push(...(r.skipped || []));
      } while (r.remaining > 0 && r.done > 0);
      toast(resultText(action, total), total.skipped.length ? 'warn' : 'ok');
      state.selected.clear();
    } catch (e) {
      const hint = e.status === 401 ? ' (check the token)' : '';
      const before = total.done > 0 ? `${resultText(action, total)}, then ` : '';
      toast(`${before}${VERB[action]} refused: ${e.message}${hint}`, 'error');
    }
    state.route.fresh = true;
    refresh(true);
  }

  // Buttons that change something carry data-act; they are enabled only when the host
  // accepts actions and a token was entered.
  function gate(btn) {
    const host = state.host;
    let why = '';
    if (!host || !host.actions_enabled) why = 'Actions are disabled: set admin.token in the host configuration';
    else if (!token()) why = 'Enter the admin token (top right) first';
    else if (btn.dataset.empty === 'true') why = 'Select messages first';
    btn.disabled = why !== '';
    btn.title = why || btn.dataset.tip || '';
  }
  const gateAll = () => document.querySelectorAll('button[data-act]').forEach(gate);

  function actButton(action, what, selection, opts = {}) {
    const btn = h('button', {
      type: 'button',
      class: opts.small ? `small ${action}` : action,
      'data-act': action,
      'data-tip': opts.tip || '',
      text: opts.label || VERB[action],
    });
    btn.addEventListener('click', (ev) => {
      ev.stopPropagation();
      const sel = typeof selection === 'function' ? selection() : selection;
      const w = typeof what === 'function' ? what() : what;
      act(action, sel, w);
    });
    gate(btn);
    return btn;
  }

  // ---- header: host, access ------------------------------------------------------------

  function renderHost() {
    const host = state.host;
    const box = $('host-state');
    box.replaceChildren();
    if (!state.reachable) {
      box.append(pill('bad', 'host unreachable', 'The admin endpoint does not answer; retrying every 2 s'));
      return;
    }
    if (!host) return;
    $('host-name').textContent = host.host;
    $('host-name').title = `ctxd ${host.version}, started ${host.started_at}`;
    document.title = `ctxd · ${host.host}`;
    box.append(
      pill(host.connected ? 'good' : 'bad', host.connected ? 'broker connected' : 'broker disconnected'),
      pill(host.ready ? 'good' : 'warn', host.ready ? 'ready' : 'not ready', host.readiness),
    );
    const up = duration((Date.now() - Date.parse(host.started_at)) / 1000);
    $('host-facts').replaceChildren(
      h('span', { text: `ctxd ${host.version}` }),
      h('span', { title: host.started_at, text: `up ${up}` }),
      ...(host.plugins || []).map((p) => h('span', { class: 'chip', title: `plugin ${p.name} ${p.version}` }, h('b', { text: p.name }), ` ${p.version}`)),
    );
    $('access').hidden = !host.actions_enabled;
    $('readonly').hidden = !!host.actions_enabled;
    gateAll();
  }

  function setupAccess() {
    $('token').value = token();
    $('operator').value = session.getItem('ctxd.operator') || '';
    $('access').addEventListener('submit', (ev) => {
      ev.preventDefault();
      session.setItem('ctxd.token', $('token').value.trim());
      const name = $('operator').value.trim();
      if (name) session.setItem('ctxd.operator', name);
      else session.removeItem('ctxd.operator');
      gateAll();
      toast(token() ? 'Token kept for this tab; actions are enabled' : 'No token: actions stay disabled', 'info');
    });
    $('token-forget').addEventListener('click', () => {
      session.removeItem('ctxd.token');
      $('token').value = '';
      gateAll();
    });
  }

  // ---- endpoints -----------------------------------------------------------------------

  // A small line chart of values (the last minutes); the title tells now and max.
  function spark(values, kind, label, fmt) {
    const W = 64;
    const H = 22;
    const vals = (values || []).map((v) => (typeof v === 'number' && isFinite(v) ? v : 0));
    const el = svg('svg', { class: `spark ${kind}`, viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img' });
    if (vals.length < 2) {
      el.setAttribute('aria-label', `${label}: no samples yet`);
      return el;
    }
    const max = Math.max(...vals);
    const top = max > 0 ? max : 1;
    const step = W / (vals.length - 1);
    const pts = vals.map((v, i) => `${(i * step).toFixed(1)},${(H - 1 - (v / top) * (H - 3)).toFixed(1)}`);
    el.append(
      svg('path', { class: 'area', d: `M0,${H} L${pts.join(' L')} L${W},${H} Z` }),
      svg('polyline', { class: 'line', points: pts.join(' ') }),
    );
    const minutes = Math.round((vals.length * 2) / 60);
    const text = `${label}: now ${fmt(vals[vals.length - 1])}, max ${fmt(max)} over ${minutes || 1} min`;
    el.setAttribute('aria-label', text);
    el.append(svg('title', { text }));
    return el;
  }

  const STATE_KIND = { consuming: 'good', draining: 'warn', stopped: 'idle', disconnected: 'bad' };

  function renderEndpoints(data) {
    const rows = (data.endpoints || []).map((e) => {
      const s = e.series || {};
      const plural = (n, w) => `${count(n)} ${w}${n === 1 ? '' : 's'}`;
      const sub = e.name === 'ctxd.errors' ? 'failed-message store' : `${plural(e.workers, 'worker')} · ${plural(e.consumers, 'consumer')}`;
      return h('tr', { 'data-endpoint': e.name },
        h('th', { scope: 'row' }, h('span', { class: 'ep', title: `${plural(e.workers, 'worker')} on this host, ${plural(e.consumers, 'consumer')} on the queue (all hosts)` }, h('b', { text: e.name }), h('small', { text: sub }))),
        h('td', {}, pill(STATE_KIND[e.state] || 'idle', e.state)),
        h('td', { class: 'num chart' }, h('span', { class: 'queue', text: count(e.queue_depth) }), spark(s.queue_depth, 'depth', 'queue depth', count)),
        h('td', { class: 'num', text: count(e.in_flight) }),
        h('td', { class: 'num chart' }, h('span', { class: 'rate', text: rate(e.rate) }), spark(s.rate, 'rate', 'handled per second', rate)),
        h('td', { class: 'num chart' }, h('span', { class: lastOf(s.errors) > 0 ? 'errors hot' : 'errors', text: rate(lastOf(s.errors)) }), spark(s.errors, 'err', 'errors per second', rate)),
        h('td', { class: 'num chart' }, h('span', { class: 'lat', text: `${ms(e.p50_ms)} · ${ms(e.p99_ms)}` }), spark(s.p99_ms, 'lat', 'p99 handler ms', ms)),
        h('td', { class: 'num', text: count(e.handled) }),
        h('td', { class: 'num', text: count(e.duplicates) }),
        h('td', { class: 'num', text: count(e.retried) }),
        h('td', { class: e.errored > 0 ? 'num hot' : 'num', text: count(e.errored) }),
      );
    });
    $('endpoints').tBodies[0].replaceChildren(...rows);
    $('endpoints-empty').hidden = rows.length > 0;
    const filter = $('endpoint-filter');
    const names = (data.endpoints || []).map((e) => e.name).filter((n) => n !== 'ctxd.errors');
    const have = [...filter.options].slice(1).map((o) => o.value);
    if (names.join('\n') !== have.join('\n')) {
      filter.replaceChildren(h('option', { value: '', text: 'All' }), ...names.map((n) => h('option', { value: n, text: n })));
      filter.value = names.includes(state.endpoint) ? state.endpoint : '';
    }
  }
  const lastOf = (a) => (a && a.length ? a[a.length - 1] : 0);

  // ---- failed messages -----------------------------------------------------------------

  function renderSummary(sum) {
    const badge = $('failed-badge');
    badge.hidden = !sum.unresolved;
    badge.textContent = count(sum.unresolved);
    const box = $('failed-summary');
    box.replaceChildren(
      ...Object.keys(STATUS_TEXT).map((k) => {
        const b = h('button', {
          type: 'button',
          class: `stat ${k}${state.status === k ? ' on' : ''}`,
          'aria-pressed': state.status === k ? 'true' : 'false',
          title: `Show ${STATUS_TEXT[k].toLowerCase()} messages`,
        }, h('span', { class: 'n', text: count(sum[k]) }), h('span', { class: 'l', text: STATUS_TEXT[k] }));
        b.addEventListener('click', () => setStatus(k));
        return b;
      }),
    );
  }

  function setStatus(s) {
    state.status = s;
    session.setItem('ctxd.status', s);
    state.selected.clear();
    state.offset = 0;
    refresh(true);
  }

  const filterParams = () => ({ status: state.status, endpoint: state.endpoint });
  // A whole group as shown: its messages of the status on screen (a group holds every
  // status; "Retry all" under Unresolved must not touch the archived ones).
  const groupSelection = (group) => ({ filter: { group, status: state.status } });

  function crumbs(items) {
    const nav = $('failed-crumbs');
    nav.replaceChildren(
      ...items.flatMap((it, i) => [
        ...(i ? [h('span', { class: 'sep', 'aria-hidden': 'true', text: '›' })] : []),
        it.href ? h('a', { href: it.href, text: it.text }) : h('span', { 'aria-current': 'page', text: it.text }),
      ]),
    );
  }

  function empty(text, sub) {
    return h('div', { class: 'empty-state' }, h('p', { class: 'big', text }), sub ? h('p', { class: 'hint', text: sub }) : null);
  }

  function renderGroups(data) {
    crumbs([{ text: 'All groups' }]);
    const groups = data.groups || [];
    if (!groups.length) {
      return empty(`No ${STATUS_TEXT[state.status].toLowerCase()} failed messages`,
        state.status === 'unresolved' ? 'Messages that fail on an endpoint appear here, grouped by endpoint, message type and exception.' : '');
    }
    const rows = groups.map((g) => {
      const where = `group ${g.endpoint} · ${typeParts(g.message_type)[0]}`;
      const whole = groupSelection(g.group);
      const tr = h('tr', { class: 'link', 'data-group': g.group, 'data-endpoint': g.endpoint, 'data-exception': g.exception_type, tabindex: '0' },
        h('td', {}, h('b', { text: g.endpoint })),
        h('td', {}, typeCell(g.message_type)),
        h('td', {}, h('span', { class: 'exc', text: g.exception_type || 'dead letter' }), h('small', { class: 'example', title: g.example_message, text: g.example_message })),
        h('td', { class: 'num count' }, h('b', { text: count(g.count) })),
        h('td', { class: 'num' }, g.repeated ? pill('warn', count(g.repeated), 'failed again after a retry') : '0'),
        h('td', { class: 'when' }, when(g.last_failed_at), h('small', {}, 'first ', when(g.first_failed_at))),
        h('td', { class: 'actions' },
          state.status === 'archived'
            ? actButton('unarchive', `the ${count(g.count)} messages of ${where}`, whole, { small: true, label: 'Unarchive all' })
            : [
                actButton('retry', `the ${count(g.count)} messages of ${where}`, whole, { small: true, label: 'Retry all' }),
                actButton('archive', `the ${count(g.count)} messages of ${where}`, whole, { small: true, label: 'Archive all' }),
              ]),
      );
      const open = () => (location.hash = `#failed/group/${encodeURIComponent(g.group)}`);
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', (ev) => ev.key === 'Enter' && ev.target === tr && open());
      return tr;
    });
    return h('div', { class: 'card' },
      h('table', { class: 'grid', id: 'groups' },
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', text: 'Endpoint' }),
          h('th', { scope: 'col', text: 'Message type' }),
          h('th', { scope: 'col', text: 'Exception' }),
          h('th', { scope: 'col', class: 'num', text: 'Messages' }),
          h('th', { scope: 'col', class: 'num', text: 'Repeated', title: 'Messages that failed again after a retry' }),
          h('th', { scope: 'col', text: 'Last failed' }),
          h('th', { scope: 'col', class: 'actions' }, h('span', { class: 'sr', text: 'Actions' })))),
        h('tbody', {}, rows)),
      h('p', { class: 'foot hint', text: `${count(data.total)} message${data.total === 1 ? '' : 's'} in ${groups.length} group${groups.length === 1 ? '' : 's'}. Click a group to see its messages.` }));
  }

  function renderList(data, title, groupId) {
    const msgs = data.messages || [];
    const first = msgs[0];
    crumbs([{ text: 'All groups', href: '#failed' }, { text: title(first) }]);
    if (!msgs.length) return empty(`No ${STATUS_TEXT[state.status].toLowerCase()} messages here`, 'Pick another status above, or go back to all groups.');
    const ids = msgs.map((m) => m.id);
    for (const id of [...state.selected]) if (!ids.includes(id)) state.selected.delete(id);

    const selection = () => ({ ids: [...state.selected] });
    const selWhat = () => `${state.selected.size} selected message${state.selected.size === 1 ? '' : 's'}`;
    const bulk = state.status === 'archived' ? [actButton('unarchive', selWhat, selection, { label: 'Unarchive selected' })]
      : [actButton('retry', selWhat, selection, { label: 'Retry selected' }), actButton('archive', selWhat, selection, { label: 'Archive selected' })];
    const whole = groupSelection(groupId);
    const groupWide = groupId
      ? (state.status === 'archived'
          ? [actButton('unarchive', `all ${count(data.total)} messages of this group`, whole, { label: 'Unarchive group' })]
          : [actButton('retry', `all ${count(data.total)} messages of this group`, whole, { label: 'Retry group' }),
             actButton('archive', `all ${count(data.total)} messages of this group`, whole, { label: 'Archive group' })])
      : [];
    const markBulk = () => bulk.forEach((b) => {
      b.dataset.empty = state.selected.size ? 'false' : 'true';
      gate(b);
    });
    markBulk();

    const all = h('input', { type: 'checkbox', 'aria-label': 'Select all on this page' });
    all.checked = msgs.every((m) => state.selected.has(m.id));
    const boxes = [];
    all.addEventListener('change', () => {
      for (const m of msgs) all.checked ? state.selected.add(m.id) : state.selected.delete(m.id);
      boxes.forEach((b) => (b.checked = all.checked));
      markBulk();
    });

    const rows = msgs.map((m) => {
      const box = h('input', { type: 'checkbox', 'aria-label': `Select message ${m.id}` });
      box.checked = state.selected.has(m.id);
      box.addEventListener('click', (ev) => ev.stopPropagation());
      box.addEventListener('change', () => {
        box.checked ? state.selected.add(m.id) : state.selected.delete(m.id);
        all.checked = msgs.every((x) => state.selected.has(x.id));
        markBulk();
      });
      boxes.push(box);
      const tr = h('tr', { class: 'link', 'data-id': m.id, 'data-message-id': m.message_id, tabindex: '0' },
        h('td', { class: 'check' }, box),
        h('td', {}, h('code', { class: 'mid', text: m.message_id })),
        groupId ? null : h('td', {}, h('b', { text: m.endpoint }), h('br'), typeCell(m.message_type)),
        h('td', { class: 'msg' }, h('span', { class: 'exc', text: m.exception_type || 'dead letter' }), h('small', { class: 'example', title: m.exception_message, text: m.exception_message })),
        h('td', { class: 'num', text: count(m.attempts) }),
        h('td', { class: 'num' }, m.failures > 1 ? pill('warn', count(m.failures), 'failed again after a retry') : count(m.failures)),
        h('td', { class: 'num', text: count(m.operator_retries) }),
        h('td', {}, pill(m.status, STATUS_TEXT[m.status] || m.status)),
        h('td', {}, when(m.last_failed_at)),
      );
      const open = () => (location.hash = `#failed/message/${m.id}`);
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', (ev) => ev.key === 'Enter' && ev.target === tr && open());
      return tr;
    });

    const pager = h('div', { class: 'pager' },
      h('span', { class: 'hint', text: `${count(data.offset + 1)}–${count(data.offset + msgs.length)} of ${count(data.total)}` }),
      pageButton('‹ Previous', data.offset > 0, Math.max(0, data.offset - PAGE)),
      pageButton('Next ›', data.offset + msgs.length < data.total, data.offset + PAGE));

    return h('div', { class: 'card' },
      h('div', { class: 'card-head' }, h('div', { class: 'group-title' }, groupHead(first, groupId)), h('div', { class: 'buttons' }, bulk, groupWide.length ? h('span', { class: 'vsep' }) : null, groupWide)),
      h('table', { class: 'grid', id: 'messages' },
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', class: 'check' }, all),
          h('th', { scope: 'col', text: 'Message id' }),
          groupId ? null : h('th', { scope: 'col', text: 'Endpoint · type' }),
          h('th', { scope: 'col', text: 'Fault' }),
          h('th', { scope: 'col', class: 'num', text: 'Attempts', title: 'Handler attempts before it was moved to _error' }),
          h('th', { scope: 'col', class: 'num', text: 'Failures', title: 'Times it reached _error' }),
          h('th', { scope: 'col', class: 'num', text: 'Retries', title: 'Retries operators asked for' }),
          h('th', { scope: 'col', text: 'Status' }),
          h('th', { scope: 'col', text: 'Last failed' }))),
        h('tbody', {}, rows)),
      pager);
  }

  function groupHead(m, groupId) {
    if (!groupId || !m) return null;
    return [h('b', { text: m.endpoint }), h('span', { class: 'sep', text: '·' }), typeCell(m.message_type), h('span', { class: 'sep', text: '·' }), h('span', { class: 'exc', text: m.exception_type || 'dead letter' })];
  }

  function pageButton(label, enabled, offset) {
    const b = h('button', { type: 'button', class: 'small quiet', text: label });
    b.disabled = !enabled;
    b.addEventListener('click', () => {
      state.offset = offset;
      refresh(true);
    });
    return b;
  }

  function kv(rows) {
    return h('table', { class: 'kv' }, h('tbody', {}, rows.map(([k, v]) => h('tr', {}, h('th', { scope: 'row', text: k }), h('td', {}, v)))));
  }
  const show = (v) => (v === null || v === undefined || v === '' ? h('span', { class: 'dim', text: '—' }) : typeof v === 'object' ? JSON.stringify(v) : String(v));

  function prettyBody(m) {
    if (typeof m.body_base64 === 'string') {
      return [h('p', { class: 'note', text: 'The body is not UTF-8 text: shown as base64. It cannot be retried from here; use ctxd errors replay.' }), h('pre', { class: 'code', text: m.body_base64 })];
    }
    let text = m.body || '';
    try {
      text = JSON.stringify(JSON.parse(text), null, 2);
    } catch (e) {
      // not JSON: shown as received
    }
    return h('pre', { class: 'code', id: 'message-body', text });
  }

  function renderMessage(m) {
    crumbs([
      { text: 'All groups', href: '#failed' },
      { text: `${m.endpoint} · ${typeParts(m.message_type)[0]}`, href: `#failed/group/${encodeURIComponent(m.group)}` },
      { text: `message ${m.id}` },
    ]);
    const buttons = [];
    if (m.status !== 'resolved') buttons.push(actButton('retry', `message ${m.message_id}`, { ids: [m.id] }));
    if (m.status === 'archived') buttons.push(actButton('unarchive', `message ${m.message_id}`, { ids: [m.id] }));
    else if (m.status !== 'resolved') buttons.push(actButton('archive', `message ${m.message_id}`, { ids: [m.id] }));
    const headers = Object.keys(m.headers || {}).sort().map((k) => [k, show(m.headers[k])]);
    const props = Object.keys(m.properties || {}).sort().map((k) => [k, show(m.properties[k])]);
    const actions = (m.actions || []).map((a) => h('tr', {}, h('td', {}, when(a.at)), h('td', { text: a.action }), h('td', { text: a.actor }), h('td', { text: a.detail || '' })));

    return h('div', { class: 'message', id: 'message', 'data-id': m.id, 'data-status': m.status },
      h('div', { class: 'card' },
        h('div', { class: 'card-head' },
          h('div', {},
            h('h2', {}, 'Message ', h('code', { text: m.message_id })),
            h('p', { class: 'hint', title: m.message_type }, h('b', { text: typeParts(m.message_type)[0] }), ` (${typeParts(m.message_type)[1]}) on endpoint `, h('b', { text: m.endpoint }))),
          h('div', { class: 'buttons' }, pill(m.status, STATUS_TEXT[m.status] || m.status), buttons)),
        h('div', { class: 'fault', id: 'message-fault' },
          h('p', { class: 'exc-line' }, h('span', { class: 'exc', text: m.exception_type || 'dead letter' }), h('span', { class: 'exc-msg', text: m.exception_message || '' })),
          h('dl', { class: 'strip' },
            [
              ['Plugin', show(m.plugin)],
              ['Attempts', count(m.attempts)],
              ['Failures', m.failures > 1 ? pill('warn', count(m.failures), 'failed again after a retry') : count(m.failures)],
              ['Operator retries', count(m.operator_retries)],
              ['First failed', when(m.first_failed_at)],
              ['Last failed', when(m.last_failed_at)],
            ].map(([k, v]) => h('div', {}, h('dt', { text: k }), h('dd', {}, v)))),
          m.stack_trace ? h('details', {}, h('summary', { text: 'Stack trace / reason' }), h('pre', { class: 'code', text: m.stack_trace })) : null)),
      h('div', { class: 'cols' },
        h('div', { class: 'card' }, h('h2', { text: 'Body' }), prettyBody(m)),
        h('div', { class: 'card' },
          h('h2', { text: 'Headers' }),
          headers.length ? h('div', { id: 'message-headers' }, kv(headers)) : empty('No headers'),
          h('h2', { text: 'Properties' }),
          props.length ? kv(props) : empty('No properties'))),
      h('div', { class: 'card' },
        h('h2', { text: 'Action log' }),
        actions.length
          ? h('table', { class: 'grid', id: 'actions' },
              h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'When' }), h('th', { scope: 'col', text: 'Action' }), h('th', { scope: 'col', text: 'By' }), h('th', { scope: 'col', text: 'Detail' }))),
              h('tbody', {}, actions))
          : empty('Nothing recorded yet')));
  }

  async function loadFailed(route, seq) {
    const sum = await api('/api/failed/summary');
    if (seq !== state.seq) return;
    renderSummary(sum);
    let body;
    if (route.kind === 'message') {
      // a message's page is loaded once per visit and after an action, not polled: it would
      // close the stack trace and lose the reader's scroll
      if (!route.fresh) return;
      body = renderMessage(await api(`/api/failed/${encodeURIComponent(route.id)}`));
    } else if (route.kind === 'group') {
      const data = await api(`/api/failed${query({ group: route.id, ...filterParams(), limit: PAGE, offset: state.offset })}`);
      body = renderList(data, (m) => (m ? `${m.endpoint} · ${typeParts(m.message_type)[0]}` : 'group'), route.id);
    } else if (route.kind === 'find') {
      const data = await api(`/api/failed${query({ message_id: route.id, status: state.status, limit: PAGE, offset: state.offset })}`);
      body = renderList(data, () => `message id ${route.id}`, null);
    } else {
      body = renderGroups(await api(`/api/failed/groups${query(filterParams())}`));
    }
    if (seq !== state.seq) return;
    const keep = window.scrollY;
    $('failed-body').replaceChildren(body);
    window.scrollTo(0, keep);
    route.fresh = false;
  }

  // ---- outbox --------------------------------------------------------------------------

  function stat(label, value, kind, title) {
    return h('div', { class: `stat-card ${kind || ''}`, title }, h('span', { class: 'n', text: value }), h('span', { class: 'l', text: label }));
  }

  function renderOutbox(o) {
    $('outbox-stats').replaceChildren(
      stat('Backlog', count(o.backlog), o.backlog > 0 ? 'warn' : '', 'Rows waiting to be published'),
      stat('Oldest row', o.backlog > 0 ? duration(o.oldest_s) : '—', o.oldest_s > 60 ? 'bad' : '', 'Age of the oldest waiting row'),
      stat('Set aside', count(o.set_aside), o.set_aside > 0 ? 'bad' : '', 'Rows the broker refused'),
    );
    const rows = o.set_aside_rows || [];
    $('outbox-rows').replaceChildren(rows.length
      ? h('table', { class: 'grid', id: 'set-aside' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col', class: 'num', text: 'Row' }), h('th', { scope: 'col', text: 'Message type' }), h('th', { scope: 'col', text: 'Exchange' }), h('th', { scope: 'col', text: 'Refused because' }), h('th', { scope: 'col', text: 'When' }))),
          h('tbody', {}, rows.map((r) => h('tr', {}, h('td', { class: 'num', text: r.id }), h('td', {}, typeCell(r.message_type)), h('td', {}, h('code', { text: r.exchange })), h('td', { text: r.refused }), h('td', {}, when(r.at))))))
      : empty('No set-aside rows', 'Every message the handlers wrote was accepted by the broker.'));
  }

  // ---- topology ------------------------------------------------------------------------

  // Four columns, left to right as messages flow: types consumed → endpoints (queues) →
  // plugins → types published.
  function renderTopology(t) {
    const plugins = t.plugins || [];
    if (!plugins.length) return empty('No plugins loaded');
    const cols = [new Map(), new Map(), new Map(), new Map()];
    const edges = [];
    const add = (c, key, node) => {
      if (!cols[c].has(key)) cols[c].set(key, node);
      return `${c}:${key}`;
    };
    for (const p of plugins) {
      const pk = add(2, p.name, { title: p.name, sub: 'plugin', kind: 'plugin' });
      for (const c of p.consumes || []) {
        const ek = add(1, c.endpoint, { title: c.endpoint, sub: 'endpoint', kind: 'endpoint' });
        const tk = add(0, c.message_type, { title: typeParts(c.message_type)[0], sub: typeParts(c.message_type)[1], full: c.message_type, kind: 'in' });
        edges.push([tk, ek], [ek, pk]);
      }
      for (const pub of p.publishes || []) {
        const tk = add(3, pub.message_type, { title: typeParts(pub.message_type)[0], sub: pub.exchange === pub.message_type ? typeParts(pub.message_type)[1] : `→ ${pub.exchange}`, full: `${pub.message_type} (exchange ${pub.exchange})`, kind: 'out' });
        edges.push([pk, tk]);
      }
    }
    const W = 1180;
    const NW = 250;
    const NH = 38;
    const GAP = 10;
    const TOP = 34;
    const gapX = (W - 4 * NW) / 3;
    const rowsMax = Math.max(...cols.map((c) => c.size), 1);
    const H = TOP + rowsMax * (NH + GAP) + 6;
    const pos = new Map();
    cols.forEach((col, c) => {
      const x = c * (NW + gapX);
      const y0 = TOP + ((rowsMax - col.size) * (NH + GAP)) / 2;
      [...col.keys()].forEach((k, i) => pos.set(`${c}:${k}`, { x, y: y0 + i * (NH + GAP) }));
    });
    const clip = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
    const out = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'topology', role: 'img', 'aria-label': 'Topology: message types consumed, endpoints, plugins, message types published' });
    ['Messages consumed', 'Endpoints (queues)', 'Plugins', 'Messages published'].forEach((label, c) =>
      out.append(svg('text', { class: 'col-head', x: c * (NW + gapX), y: 16, text: label })));
    const seen = new Set();
    for (const [a, b] of edges) {
      if (seen.has(`${a}>${b}`)) continue;
      seen.add(`${a}>${b}`);
      const p = pos.get(a);
      const q = pos.get(b);
      const x1 = p.x + NW;
      const y1 = p.y + NH / 2;
      const x2 = q.x;
      const y2 = q.y + NH / 2;
      const mx = (x1 + x2) / 2;
      out.append(svg('path', { class: 'edge', d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 6},${y2}` }), svg('path', { class: 'arrow', d: `M${x2 - 7},${y2 - 4} L${x2},${y2} L${x2 - 7},${y2 + 4} Z` }));
    }
    cols.forEach((col, c) => {
      for (const [k, n] of col) {
        const { x, y } = pos.get(`${c}:${k}`);
        out.append(svg('g', { class: `node ${n.kind}` },
          svg('title', { text: n.full || `${n.sub} ${n.title}` }),
          svg('rect', { x, y, width: NW, height: NH, rx: 6 }),
          svg('text', { class: 't', x: x + 10, y: y + 16, text: clip(n.title, 32) }),
          svg('text', { class: 's', x: x + 10, y: y + 30, text: clip(n.sub || '', 40) })));
      }
    });
    if (!cols[3].size) out.append(svg('text', { class: 'none', x: 3 * (NW + gapX), y: TOP + 16, text: 'nothing published yet' }));
    return out;
  }

  // ---- routing and polling -------------------------------------------------------------

  function parseRoute() {
    const [tab, kind, id] = location.hash.replace(/^#/, '').split('/');
    const tabs = ['endpoints', 'failed', 'outbox', 'topology'];
    return { tab: tabs.includes(tab) ? tab : 'endpoints', kind: kind || '', id: id ? decodeURIComponent(id) : '', fresh: true };
  }

  function showRoute() {
    state.route = parseRoute();
    state.seq++;
    if (state.route.kind !== 'group' || state.route.id !== state.lastGroup) {
      state.selected.clear();
      state.offset = 0;
    }
    state.lastGroup = state.route.kind === 'group' ? state.route.id : '';
    for (const a of document.querySelectorAll('.tabs a')) {
      const on = a.dataset.tab === state.route.tab;
      a.classList.toggle('on', on);
      if (on) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== `view-${state.route.tab}`;
    if (state.route.tab === 'failed' && state.route.kind === 'message') $('failed-body').replaceChildren(h('p', { class: 'hint', text: 'Loading…' }));
    refresh(true);
  }

  let timer = null;
  let topologyAt = 0;
  let running = null;

  // Loads what the current view shows (and the host); polls every 2 s. now: an answer to
  // a click, not the timer.
  async function refresh(now) {
    clearTimeout(timer);
    if (running && !now) return;
    const seq = state.seq;
    const route = state.route;
    const work = (async () => {
      try {
        state.host = await api('/api/host');
        state.reachable = true;
        renderHost();
        if (route.tab === 'endpoints') {
          const data = await api('/api/endpoints');
          if (seq === state.seq) renderEndpoints(data);
        } else if (route.tab === 'failed') {
          // the endpoint filter's choices, until the endpoints are known
          if ($('endpoint-filter').options.length <= 1) renderEndpoints(await api('/api/endpoints'));
          await loadFailed(route, seq);
        } else if (route.tab === 'outbox') {
          const data = await api('/api/outbox');
          if (seq === state.seq) renderOutbox(data);
        } else if (route.tab === 'topology' && (now || Date.now() - topologyAt > 10000)) {
          const data = await api('/api/topology');
          topologyAt = Date.now();
          if (seq === state.seq) $('topology').replaceChildren(renderTopology(data));
        }
        if (route.tab !== 'failed') {
          const sum = await api('/api/failed/summary');
          renderSummary(sum);
        }
        loadError(null);
      } catch (e) {
        if (e.status === 0) {
          state.reachable = false;
          renderHost();
          loadError(null);
        } else if (e.status === 404 && route.kind === 'message') {
          $('failed-body').replaceChildren(empty(`No failed message ${route.id}`, 'It may have been deleted after its retention time.'));
          route.fresh = false;
        } else {
          loadError(`Could not load: ${e.message}`);
        }
      }
    })();
    running = work;
    await work;
    if (running === work) {
      running = null;
      timer = setTimeout(() => refresh(false), POLL_MS);
    }
  }

  function setupFilters() {
    $('endpoint-filter').addEventListener('change', (ev) => {
      state.endpoint = ev.target.value;
      state.offset = 0;
      refresh(true);
    });
    $('find-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const id = $('find-id').value.trim();
      if (id && !/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(id)) {
        toast(`${id} is not a message id (a UUID)`, 'error');
        return;
      }
      location.hash = id ? `#failed/find/${encodeURIComponent(id)}` : '#failed';
    });
  }

  document.addEventListener('DOMContentLoaded', () => {
    setupAccess();
    setupFilters();
    window.addEventListener('hashchange', showRoute);
    showRoute();
  });
})();
