// The dashboard: polls /dashboard/data once a second (and /events when this binary serves it),
// keeps the last minute of samples, and turns the totals it gets into rates, ratios and
// quantiles. Every text from the server goes in through textContent: a backend's error or a
// config line can never become markup. No inline script or style (the page's CSP forbids both).
'use strict';
(() => {
  const POLL_MS = 1000;
  const WINDOW_S = 60;        // "over the last minute"
  const RATE_S = 3;           // req/s and msgs/s: over the last few seconds
  const SPARK_S = 5;          // each sparkline point: quantiles over the 5 s before it
  const MAX_EVENTS = 200;     // kept on the page, newest first

  const $ = id => document.getElementById(id);
  const svgNs = 'http://www.w3.org/2000/svg';

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(svgNs, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  const fmt = {
    rate(r) { return r === null ? '-' : r < 10 ? r.toFixed(1) : Math.round(r).toString(); },
    ms(v) { return v === null ? '-' : v < 1 ? v.toFixed(2) + ' ms' : v < 100 ? v.toFixed(1) + ' ms' : v < 10000 ? Math.round(v) + ' ms' : (v / 1000).toFixed(1) + ' s'; },
    pct(v) { return v === null ? '-' : v === 0 ? '0%' : v < 0.001 ? '<0.1%' : (v * 100).toFixed(1) + '%'; },
    time(iso) { const d = new Date(iso); return isNaN(d) ? iso : d.toLocaleTimeString([], { hour12: false }); },
    ago(iso) {
      const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
      return s < 1 ? 'just now' : s < 90 ? Math.round(s) + ' s ago' : s < 5400 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago';
    },
  };

  // ---- state kept between polls ----------------------------------------------------------

  const samples = [];            // {t, backends: Map(url -> {requests, failures, counts}), pipeline}
  const rows = new Map();        // url -> row handles
  const seenSince = new Map();   // url -> {state, at}: when this page first saw the current state
  const lastEvent = new Map();   // url -> newest event for it
  let features = { events: false, drain: false };
  let eventsNext = 0;
  let bounds = [];

  // ---- polling ---------------------------------------------------------------------------

  async function poll() {
    const started = performance.now();
    try {
      const response = await fetch('/dashboard/data', { cache: 'no-store' });
      if (!response.ok) throw new Error('HTTP ' + response.status);
      const data = await response.json();
      features = data.features || features;
      if (features.events) await pollEvents();
      render(data);
      setLive(true, 'live, ' + new Date().toLocaleTimeString([], { hour12: false }));
    } catch (e) {
      setLive(false, 'cannot reach the admin listener (' + e.message + '); retrying');
    }
    setTimeout(poll, Math.max(100, POLL_MS - (performance.now() - started)));
  }

  function setLive(ok, text) {
    const live = $('live');
    live.textContent = text;
    live.className = 'live ' + (ok ? 'ok' : 'down');
  }

  async function pollEvents() {
    const response = await fetch('/events?since=' + eventsNext, { cache: 'no-store' });
    if (!response.ok) return;
    const body = await response.json();
    const list = $('event-list');
    for (const e of body.events || []) {
      lastEvent.set(e.backend, e);
      list.prepend(eventItem(e, eventsNext > 0));
    }
    while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
    if (typeof body.next === 'number') eventsNext = body.next;
  }

  function eventItem(e, fresh) {
    const li = el('li', fresh ? 'new' : '');
    li.dataset.seq = e.seq;
    li.dataset.backend = e.backend;
    li.dataset.to = e.to;
    const details = el('details');
    const summary = el('summary');
    const time = el('time', '', fmt.time(e.at));
    time.dateTime = e.at;
    summary.append(time, el('b', 'mono', e.backend), ' ', el('span', 'state state-' + e.from, e.from),
      el('span', 'arrow', ' → '), el('span', 'state state-' + e.to, e.to), ': ', el('span', 'event-reason', e.reason || ''));
    details.append(summary, el('pre', 'evidence', JSON.stringify(e.evidence ?? null, null, 2)));
    li.append(details);
    return li;
  }

  // ---- rendering -------------------------------------------------------------------------

  function render(data) {
    const status = data.status;
    const pipeline = data.pipeline;
    const t = pipeline.clockSeconds;
    bounds = data.latency.boundsMs;
    const counts = new Map(data.latency.backends.map(b => [b.backend, b.counts]));
    const sample = { t, pipeline, backends: new Map() };
    for (const b of status.backends)
      sample.backends.set(b.url, { requests: b.requests, failures: b.failures, counts: counts.get(b.url) || null });
    samples.push(sample);
    while (samples.length > 2 && samples[0].t < t - WINDOW_S - 1) samples.shift();

    renderHeader(status, pipeline);
    renderBackends(status, data.latency.counting);
    renderPipeline(pipeline, status.backends.some(b => b.address));
    $('events').hidden = !features.events;
    $('token-form').hidden = !features.drain;
    for (const c of document.querySelectorAll('.drain-col')) c.hidden = !features.drain;
  }

  // The sample closest to `seconds` before the newest one (the oldest one if none is that old).
  function before(seconds) {
    const now = samples[samples.length - 1];
    let pick = samples[0];
    for (const s of samples) if (s.t <= now.t - seconds) pick = s;
    return pick;
  }

  function rate(now, then, read) {
    const dt = now.t - then.t;
    if (dt <= 0) return null;
    const a = read(now), b = read(then);
    return a === undefined || b === undefined ? null : Math.max(0, a - b) / dt;
  }

  function renderHeader(status, pipeline) {
    $('balancing').textContent = status.balancing;
    const c = status.config;
    if (c) {
      $('config').textContent = 'generation ' + c.generation + ', loaded ' + fmt.time(c.loadedAt);
      $('config-error').hidden = !c.lastError;
      $('config-error').textContent = c.lastError ? 'last reload rejected: ' + c.lastError : '';
    }
    if (status.queue && typeof status.queue.length === 'number') {
      $('queue-fact').hidden = false;
      $('queue').textContent = status.queue.length + ' waiting';
    }
    const now = samples[samples.length - 1], then = before(RATE_S);
    const busy = rate(now, then, s => s.pipeline.stateTask.busySeconds);
    $('busy').textContent = busy === null ? '-' : fmt.pct(Math.min(1, busy)) + ' of the time handling messages';
  }

  function renderBackends(status, counting) {
    const tbody = $('backend-rows');
    if (rows.size === 0) tbody.replaceChildren(); // the rows the server wrote into the page: this script's take over
    const present = new Set();
    const now = samples[samples.length - 1];
    for (const b of status.backends) {
      present.add(b.url);
      let row = rows.get(b.url);
      if (!row) {
        row = makeRow(b.url);
        rows.set(b.url, row);
        tbody.append(row.tr);
      }
      row.tr.classList.remove('gone');
      row.goneAt = 0;
      updateRow(row, b, now, counting);
    }
    // A backend gone from /status (removed and drained): fade out, then drop the row.
    for (const [url, row] of rows) {
      if (present.has(url)) continue;
      if (!row.goneAt) { row.goneAt = Date.now(); row.tr.classList.add('gone'); }
      else if (Date.now() - row.goneAt > 3000) { row.tr.remove(); row.chart?.destroy(); rows.delete(url); }
    }
  }

  function makeRow(url) {
    const tr = el('tr');
    tr.dataset.backend = url;
    const cell = (label, cls) => {
      const td = el('td', cls);
      td.dataset.label = label;
      const inner = el('div', 'cell');
      td.append(inner);
      tr.append(td);
      return inner;
    };
    const r = { tr };
    cell('backend', 'url').textContent = url;
    const stateCell = cell('state');
    r.state = el('span', 'state');
    r.reason = el('div', 'reason');
    r.since = el('div', 'since');
    stateCell.append(r.state, r.reason, r.since);
    r.weight = cell('weight', 'num');
    r.inFlight = cell('in flight', 'num');
    r.rps = cell('req/s', 'num');
    r.errors = cell('errors (1 min)', 'num');
    const spark = cell('p50 / p99');
    spark.classList.add('spark');
    r.chartBox = el('div', 'chart');
    r.quantiles = el('span', 'q');
    spark.append(r.chartBox, r.quantiles);
    r.conns = cell('pooled conns', 'num');
    r.probe = cell('last probe');
    const action = cell('', 'drain-col');
    r.drainTd = action.parentElement;
    r.drain = el('button', 'drain', 'drain');
    r.drain.type = 'button';
    r.drain.addEventListener('click', () => drain(url, r.drain.dataset.action));
    action.append(r.drain);
    return r;
  }

  function updateRow(r, b, now, counting) {
    r.state.textContent = b.state;
    r.state.className = 'state state-' + b.state;
    r.reason.textContent = b.stateReason || '';
    r.reason.hidden = !b.stateReason;
    r.since.textContent = since(b);

    const effective = typeof b.effectiveWeight === 'number' ? Math.round(b.effectiveWeight * 100) / 100 : b.weight;
    r.weight.textContent = effective !== b.weight ? effective + ' of ' + b.weight : String(b.weight);
    r.weight.title = effective !== b.weight ? 'effective weight (slow start) of the configured weight' : 'weight';
    r.inFlight.textContent = typeof b.maxInFlight === 'number' && b.maxInFlight > 0
      ? b.inFlight + ' / ' + b.maxInFlight : String(b.inFlight);

    const mine = s => s.backends.get(b.url);
    const recent = before(RATE_S);
    const rps = rate(now, recent, s => mine(s)?.requests);
    r.rps.textContent = fmt.rate(rps);
    const minute = before(WINDOW_S);
    const then = mine(minute);
    const requests = then ? b.requests - then.requests : 0;
    const failures = then ? b.failures - then.failures : 0;
    r.errors.textContent = requests > 0 ? fmt.pct(failures / requests) + ' (' + failures + ' of ' + requests + ')' : '-';
    r.errors.parentElement.classList.toggle('probe-error', failures > 0);

    renderLatency(r, b.url, counting);
    r.conns.textContent = String(b.connections?.open ?? 0);
    renderProbe(r.probe, b.lastProbe);

    r.drainTd.hidden = !features.drain;
    const draining = b.state === 'draining';
    r.drain.dataset.action = draining ? 'undrain' : 'drain';
    r.drain.textContent = draining ? 'undrain' : 'drain';
    r.drain.setAttribute('aria-label', r.drain.textContent + ' ' + b.url);
  }

  function since(b) {
    const event = lastEvent.get(b.url);
    if (event && (event.to === b.state || (event.to === 'drained' && b.state === 'draining')))
      return 'since ' + fmt.time(event.at) + ' (' + fmt.ago(event.at) + ')';
    let seen = seenSince.get(b.url);
    if (!seen || seen.state !== b.state) { seen = { state: b.state, at: new Date().toISOString() }; seenSince.set(b.url, seen); }
    return 'seen since ' + fmt.time(seen.at);
  }

  function renderProbe(target, p) {
    target.replaceChildren();
    if (!p) { target.textContent = 'none yet'; return; }
    const what = p.error ? el('span', 'probe-error', p.error) : el('span', '', String(p.status));
    target.append(what, el('span', 'since', ' ' + fmt.ms(p.latencyMs) + ', ' + fmt.ago(p.at)));
  }

  // ---- latency: quantiles off cumulative buckets, as histogram_quantile does --------------

  function delta(a, b) {
    if (!a) return null;
    if (!b) return a.slice();
    return a.map((v, i) => Math.max(0, v - (b[i] || 0)));
  }

  function quantile(counts, q) {
    if (!counts) return null;
    const total = counts.reduce((x, y) => x + y, 0);
    if (total === 0) return null;
    const rank = q * total;
    let seen = 0;
    for (let i = 0; i < counts.length; i++) {
      if (counts[i] > 0 && seen + counts[i] >= rank) {
        const lo = i === 0 ? 0 : bounds[i - 1];
        const hi = i < bounds.length ? bounds[i] : bounds[bounds.length - 1];
        return lo + (hi - lo) * ((rank - seen) / counts[i]);
      }
      seen += counts[i];
    }
    return bounds[bounds.length - 1];
  }

  function renderLatency(r, url, counting) {
    const counts = s => s.backends.get(url)?.counts;
    const now = samples[samples.length - 1];
    const minute = delta(counts(now), counts(before(WINDOW_S)));
    const p50 = quantile(minute, 0.5), p99 = quantile(minute, 0.99);
    r.quantiles.replaceChildren();
    if (p50 === null) r.quantiles.textContent = counting ? 'no requests' : 'starting';
    else r.quantiles.append(el('span', 'p50', fmt.ms(p50)), ' / ', el('span', 'p99', fmt.ms(p99)));

    if (typeof uPlot === 'undefined') return;
    const xs = [], p50s = [], p99s = [];
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i];
      let j = i;
      while (j > 0 && samples[j].t > s.t - SPARK_S) j--;
      const d = i === j ? null : delta(counts(s), counts(samples[j]));
      xs.push(s.t);
      p50s.push(quantile(d, 0.5));
      p99s.push(quantile(d, 0.99));
    }
    if (!r.chart) r.chart = sparkline(r.chartBox);
    if (p99s.some(v => v !== null)) r.chart.setData([xs, p50s, p99s]);
  }

  function sparkline(target) {
    const css = getComputedStyle(document.documentElement);
    return new uPlot({
      width: 120, height: 30,
      cursor: { show: false }, select: { show: false }, legend: { show: false },
      scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(1, max || 0)] } },
      axes: [{ show: false }, { show: false }],
      series: [{},
        { stroke: css.getPropertyValue('--p50').trim(), width: 1.5, points: { show: false }, spanGaps: true },
        { stroke: css.getPropertyValue('--p99').trim(), width: 1.5, points: { show: false }, spanGaps: true }],
    }, [[], [], []], target);
  }

  // ---- drain / undrain ---------------------------------------------------------------------

  async function drain(url, action) {
    const result = $('action-result');
    const headers = { 'Content-Type': 'application/json' };
    const token = $('token').value.trim();
    if (token) headers.Authorization = 'Bearer ' + token;
    result.className = 'action-result';
    result.textContent = action + ' ' + url + ' …';
    try {
      const response = await fetch('/backends/' + action, { method: 'POST', headers, body: JSON.stringify({ url }) });
      if (response.ok) result.textContent = action + ' ' + url + ': done';
      else {
        result.className = 'action-result bad';
        result.textContent = action + ' ' + url + ': ' + response.status + (response.status === 401 ? ', enter the admin token above' : '');
      }
    } catch (e) {
      result.className = 'action-result bad';
      result.textContent = action + ' ' + url + ': ' + e.message;
    }
  }

  // ---- the pipeline diagram ------------------------------------------------------------------

  // Where each stage stands (x, y, width, height) and its line of description: the README's
  // diagram, laid out left to right. Channels this layout does not know (a later stage's) are
  // still listed in the table under the diagram.
  const boxes = {
    ConfigWatcher: [50, 20, 230, 64, 'polls lb.json'],
    Ticker: [385, 20, 230, 64, 'PeriodicTimer'],
    HealthChecker: [720, 20, 250, 64, 'probes every backend'],
    AdminEndpoints: [50, 185, 230, 64, '/status and this page'],
    BackendState: [720, 165, 250, 170, 'the only owner of backend state'],
    ProxyEndpoint: [50, 330, 230, 64, 'one handler per request'],
    BackendPools: [385, 455, 230, 64, 'a connection pool per backend'],
    AccessLogWriter: [50, 470, 230, 64, 'json or combined lines'],
    JournalWriter: [720, 470, 200, 64, 'journal.path, for replay'],
    DnsResolver: [720, 570, 250, 64, 'resolves discover: "dns" hosts'],
  };

  // channel, message type (for events and requests), path, label position and anchor, lines.
  const edges = [
    { id: 'periods', channel: 'periods', d: 'M280,52 H385', at: [332, 30], anchor: 'middle', fill: true },
    { id: 'ticks', channel: 'ticks', d: 'M615,52 H720', at: [667, 30], anchor: 'middle', fill: true },
    { id: 'probe-results', channel: 'events', type: 'ProbeResult', d: 'M860,84 V165', at: [845, 112], anchor: 'end' },
    { id: 'probe-plans', channel: 'requests', type: 'ProbePlanRequest', d: null, at: [845, 130], anchor: 'end' },
    { id: 'config', channel: 'events', type: 'ConfigChanged', d: 'M280,78 L720,195', at: [470, 160], anchor: 'middle' },
    { id: 'status', channel: 'requests', type: 'StatusRequest', d: 'M280,217 H720', at: [500, 210], anchor: 'middle' },
    { id: 'picks', channel: 'requests', type: 'PickRequest', d: 'M280,355 L720,300', at: [500, 310], anchor: 'middle' },
    { id: 'outcomes', channel: 'events', type: 'RequestOutcome', d: null, at: [500, 360], anchor: 'middle' },
    { id: 'cancels', channel: 'events', type: 'PickCancelled', d: null, at: [500, 378], anchor: 'middle', optional: true },
    { id: 'connections', channel: 'events', type: 'ConnectionsChanged', d: 'M615,470 L790,335', at: [700, 440], anchor: 'end' },
    { id: 'journal', channel: 'journal', d: 'M800,335 V470', at: [812, 400], anchor: 'start', fill: true, twoLines: true },
    { id: 'membership', channel: 'events', type: 'MembershipChanged', d: 'M950,570 V335', at: [710, 592], anchor: 'end' },
    { id: 'discovery-plans', channel: 'requests', type: 'DiscoveryPlanRequest', d: null, at: [710, 610], anchor: 'end' },
    { id: 'forward', channel: null, d: 'M280,380 L385,480', at: [300, 452], anchor: 'start', text: 'HTTP' },
    { id: 'accesslog', channel: 'accesslog', d: 'M120,394 V470', at: [130, 424], anchor: 'start', fill: true, twoLines: true },
    { id: 'accesslogsettings', channel: 'accesslogsettings', d: 'M50,52 H25 V502 H50', at: [18, 280], anchor: 'middle', fill: true, rotate: true },
  ];

  let drawn = null;

  function drawDiagram() {
    const root = $('diagram');
    root.replaceChildren();
    const defs = svg('defs');
    const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '9', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse' });
    marker.append(svg('path', { d: 'M0,0 L10,5 L0,10 z' }));
    defs.append(marker);
    root.append(defs);
    const handles = { boxes: {}, edges: {} };
    for (const e of edges) {
      const g = svg('g', { class: 'edge' + (e.channel ? '' : ' other'), 'data-edge': e.id });
      if (e.d) g.append(svg('path', { d: e.d, 'marker-end': 'url(#arrow)' }));
      const [x, y] = e.at;
      const text = svg('text', { x, y, 'text-anchor': e.anchor });
      if (e.rotate) text.setAttribute('transform', 'rotate(-90 ' + x + ' ' + y + ')');
      g.append(text);
      root.append(g);
      handles.edges[e.id] = { g, text };
    }
    for (const [name, [x, y, w, h, sub]] of Object.entries(boxes)) {
      const g = svg('g', { class: 'box' + (name === 'BackendState' ? ' owner' : ''), 'data-stage': name });
      g.append(svg('rect', { x, y, width: w, height: h, rx: 8 }));
      g.append(svg('text', { class: 'name', x: x + 12, y: y + 24 }, name));
      const subText = svg('text', { class: 'sub', x: x + 12, y: y + 44 }, sub);
      g.append(subText);
      const extra = [];
      if (name === 'BackendState')
        for (let i = 0; i < 5; i++) { const t = svg('text', { class: 'sub', x: x + 12, y: y + 68 + i * 20 }); g.append(t); extra.push(t); }
      root.append(g);
      handles.boxes[name] = { g, extra };
    }
    return handles;
  }

  function setLines(text, lines, x) {
    text.replaceChildren();
    lines.forEach((line, i) => text.append(svg('tspan', i ? { x, dy: '1.25em' } : {}, line)));
  }

  // discovering: some backend comes from DNS (it has an address): the resolver's box is lit.
  function renderPipeline(pipeline, discovering) {
    if (!drawn) drawn = drawDiagram();
    const now = samples[samples.length - 1], then = before(RATE_S);
    const channel = (s, name) => s.pipeline.channels.find(c => c.name === name);
    const channelRate = name => rate(now, then, s => channel(s, name)?.read);
    const messageRate = (name, type) => rate(now, then, s => channel(s, name)?.messages?.find(m => m.type === type)?.read ?? 0);
    const byName = new Map(pipeline.channels.map(c => [c.name, c]));

    for (const e of edges) {
      const h = drawn.edges[e.id];
      if (!e.channel) { h.text.textContent = e.text; continue; }
      const c = byName.get(e.channel);
      if (!c) { h.g.classList.add('off'); h.text.textContent = ''; continue; }
      const r = e.type ? messageRate(e.channel, e.type) : channelRate(e.channel);
      if (e.optional && !c.messages?.some(m => m.type === e.type)) { h.text.textContent = ''; continue; }
      const label = e.type ? e.channel + ': ' + e.type : e.channel;
      const numbers = fmt.rate(r) + '/s' + (e.fill ? ' · ' + c.count + '/' + c.capacity : '');
      if (e.twoLines || (e.fill && !e.rotate)) setLines(h.text, [label, numbers], e.at[0]);
      else h.text.textContent = label + ' ' + numbers;
      h.g.classList.toggle('active', (r || 0) > 0);
      h.g.classList.toggle('off', c.enabled === false);
    }
    drawn.boxes.DnsResolver.g.classList.toggle('off', !discovering);
    for (const id of ['membership', 'discovery-plans']) drawn.edges[id].g.classList.toggle('off', !discovering);
    const journal = byName.get('journal');
    drawn.boxes.JournalWriter.g.classList.toggle('off', journal?.enabled !== true);
    if (journal?.enabled === false) drawn.edges.journal.text.lastChild?.append(' (off)');
    const log = byName.get('accesslog');
    drawn.boxes.AccessLogWriter.g.classList.toggle('off', log?.enabled === false);
    if (log?.enabled === false) drawn.edges.accesslog.text.lastChild?.append(' (off)');

    const [inboxEvents, inboxRequests, busyLine, turnsLine, wakeLine] = drawn.boxes.BackendState.extra;
    const ev = byName.get('events'), rq = byName.get('requests');
    inboxEvents.textContent = 'events: ' + ev.count + '/' + ev.capacity + ' waiting, ' + fmt.rate(channelRate('events')) + '/s';
    inboxRequests.textContent = 'requests: ' + rq.count + '/' + rq.capacity + ' waiting, ' + fmt.rate(channelRate('requests')) + '/s';
    const busy = rate(now, then, s => s.pipeline.stateTask.busySeconds);
    busyLine.textContent = 'busy ' + (busy === null ? '-' : fmt.pct(Math.min(1, busy))) + ' of the time';
    turnsLine.textContent = fmt.rate(rate(now, then, s => s.pipeline.stateTask.turns)) + ' loop turns/s';
    wakeLine.textContent = 'Wake (its own timer): ' + fmt.rate(messageRate('events', 'Wake')) + '/s';

    renderChannelTable(pipeline, channelRate, messageRate);
  }

  function renderChannelTable(pipeline, channelRate, messageRate) {
    const tbody = $('channel-rows');
    tbody.replaceChildren();
    for (const c of pipeline.channels) {
      const tr = el('tr');
      tr.dataset.channel = c.name;
      const senders = c.messages ? c.messages.map(m => m.from + ' (' + m.type + ' ' + fmt.rate(messageRate(c.name, m.type)) + '/s)').join(', ') : c.from;
      const fill = el('span', 'fill');
      const ratio = c.capacity > 0 ? c.count / c.capacity : 0;
      fill.append(el('i', 'w' + Math.min(10, Math.ceil(ratio * 10))));
      const countCell = el('td', 'num', c.count + ' / ' + c.capacity);
      countCell.append(fill);
      tr.append(el('td', 'mono', c.name), el('td', '', senders + ' → ' + c.to + (c.enabled === false ? ' (off)' : '')),
        el('td', 'num', fmt.rate(channelRate(c.name))), countCell);
      tbody.append(tr);
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('token-form').addEventListener('submit', e => e.preventDefault()); // Enter in the token field: nothing to submit
    poll();
  });
})();
