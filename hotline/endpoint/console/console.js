/*
 * hotline operator console.
 *
 * Plain JavaScript, no libraries, nothing loaded from outside this endpoint.
 * Rules this file keeps:
 *  - Text that came from the network (another country's system) is only ever
 *    inserted with textContent / text nodes, never as markup.
 *  - Coded values are shown through the message catalogue of the operator's
 *    language; what is sent is always the wire code, never a translation.
 *  - The page is live: one EventSource on /api/events (a snapshot first, then
 *    each event); it reconnects on its own and a new snapshot replaces the old.
 */
"use strict";

(function () {
  const LANG_KEY = "hotline.console.lang";
  const SOUND_KEY = "hotline.console.sound";
  const VIEW_KEY = "hotline.console.view";
  const DRAFT_KEY = "hotline.console.draft";
  const VIEWS = ["inbox", "outbox", "links", "compose"];
  const NATIVE = {
    en: "English", ru: "Русский", be: "Беларуская", lt: "Lietuvių",
    lv: "Latviešu", et: "Eesti", pl: "Polski",
  };
  const ALARM_PRECEDENCE = new Set(["flash", "immediate"]);
  const ROUTED = new Set(["warning", "update", "cancel", "text"]);
  const LINKS_POLL_MS = 5000;
  const CHART_WINDOW_MS = 30 * 60 * 1000;
  const MAX_ALARMS = 100;
  const MAX_POINTS = 300;
  const EVENT_NAMES = [
    "message_queued", "receipt_queued", "message_received", "duplicate_ignored",
    "receipt_stored", "message_accepted", "message_rejected", "delivery_refused",
    "link_test_answered", "message_acknowledged", "checkpoint_witnessed",
    "checkpoint_inconsistent", "checkpoint_refused", "overdue", "relay_connected",
    "relay_disconnected", "relay_unavailable", "relay_available", "path_arrived",
    // the relay caught out (hotline/endpoint/alarms.py): each kind is its own event name
    "not_accepted", "refusal_unsigned", "refusal_unfounded", "delivery_late",
    "delivery_reordered", "delivery_stale", "not_in_log", "inclusion_unproven",
    "consistency_unproven", "split_view", "entries_mismatch", "log_rule_broken", "withheld",
    "channel_withheld",
  ];

  const S = {
    config: null,
    cat: null,
    lang: "en",
    inbox: new Map(),
    outbox: new Map(),
    inboxEls: new Map(),
    outboxEls: new Map(),
    ackForms: new Map(),
    expanded: new Set(),
    checkpoint: null,
    linkTest: null,
    relayConnected: null,
    links: null,
    alarms: [],
    overdueOut: new Set(),
    overdueIn: new Set(),
    unseen: 0,
    alarmHigh: 0,
    snapshots: 0,
    series: new Map(),
    sound: false,
    audio: null,
    es: null,
    retryMs: 1000,
    sse: "connecting",
    online: new Map(),
    offlineSince: new Map(),
    offlineAlarmed: new Set(),
    draftRef: null,
  };

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ i18n

  function t(key, args) {
    const ui = S.cat ? S.cat.ui : null;
    let s = ui && typeof ui[key] === "string" && ui[key] !== "" ? ui[key] : key;
    if (args) {
      s = s.replace(/\{(\w+)\}/g, (m, k) =>
        Object.prototype.hasOwnProperty.call(args, k) ? String(args[k]) : m);
    }
    return s;
  }

  function code(group, value) {
    const g = S.cat && S.cat.codes ? S.cat.codes[group] : null;
    if (g && typeof g[value] === "string" && g[value] !== "") return g[value];
    return String(value);
  }

  function codesOf(group) {
    return S.cat && S.cat.codes && S.cat.codes[group] ? Object.keys(S.cat.codes[group]) : [];
  }

  function applyI18n(root) {
    for (const n of root.querySelectorAll("[data-i18n]")) n.textContent = t(n.dataset.i18n);
    for (const n of root.querySelectorAll("[data-code]")) {
      const [g, v] = splitCode(n.dataset.code);
      n.textContent = code(g, v);
    }
  }

  function splitCode(s) {
    const i = s.indexOf(":");
    return [s.slice(0, i), s.slice(i + 1)];
  }

  function langName(tag) {
    return NATIVE[tag] ? `${tag} (${NATIVE[tag]})` : tag;
  }

  // ------------------------------------------------------------------ DOM helpers

  /** An element; strings become text nodes, never markup. */
  function h(tag, props, children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "class") e.className = v;
        else if (k === "text") e.textContent = String(v);
        else if (k === "i18n") { e.dataset.i18n = v; e.textContent = t(v); }
        else if (k === "code") { e.dataset.code = v; e.textContent = code(...splitCode(v)); }
        else if (k === "dataset") Object.assign(e.dataset, v);
        else if (k === "hidden") e.hidden = true;
        else e.setAttribute(k, v === true ? "" : String(v));
      }
    }
    if (children) {
      for (const c of children) {
        if (c !== null && c !== undefined && c !== false) e.append(c);
      }
    }
    return e;
  }

  function short(id) {
    return typeof id === "string" && id.length >= 6 ? "#" + id.slice(-6) : "#?";
  }

  function hms(ms) {
    if (typeof ms !== "number") return "—";
    return new Date(ms).toISOString().slice(11, 19);
  }

  function stamp(ms) {
    if (typeof ms !== "number") return "—";
    const iso = new Date(ms).toISOString();
    return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
  }

  function num(v, digits) {
    if (typeof v !== "number" || !Number.isFinite(v)) return "—";
    if (digits !== undefined) return v.toFixed(digits);
    return String(Math.round(v * 10) / 10);
  }

  /** A latency: "420 ms", "3.2 s", "2:05 min". */
  function dur(ms) {
    if (typeof ms !== "number" || !Number.isFinite(ms)) return "—";
    const a = Math.abs(ms);
    if (a < 1000) return `${Math.round(ms)} ${t("unit_ms")}`;
    if (a < 60000) return `${(ms / 1000).toFixed(1)} ${t("unit_s")}`;
    return `${clock(ms)} ${t("unit_min")}`;
  }

  /** A countdown: "4:05", "1:02:09". */
  function clock(ms) {
    const total = Math.floor(Math.abs(ms) / 1000);
    const hh = Math.floor(total / 3600);
    const mm = Math.floor((total % 3600) / 60);
    const ss = String(total % 60).padStart(2, "0");
    return hh > 0 ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
  }

  function pct(v) {
    return typeof v === "number" ? `${(v * 100).toFixed(1)} %` : "—";
  }

  async function getJson(url) {
    const r = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (r.status === 401) window.HotlineLogin.expired();
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.json();
  }

  function store(key, value) {
    try { localStorage.setItem(key, value); } catch (e) { /* storage may be disabled */ }
  }

  function recall(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; }
  }

  // ------------------------------------------------------------------ message parts

  function sessionStore(key, value) {
    try {
      if (value === null) sessionStorage.removeItem(key);
      else sessionStorage.setItem(key, value);
    } catch (e) { /* storage disabled: nothing is kept */ }
  }

  function sessionRecall(key) {
    try { return sessionStorage.getItem(key); } catch (e) { return null; }
  }

  function precedenceBadge(p) {
    return h("span", { class: `badge prec-${p}`, code: `precedence:${p}` });
  }

  function statusBadge(s) {
    if (s === "actual") return null;
    return h("span", { class: `badge status-${s}`, code: `status:${s}`, dataset: { status: s } });
  }

  function trackSummary(body) {
    const tr = body.track;
    if (!tr) return null;
    const parts = [];
    parts.push(code("object", tr.object) + (typeof tr.count === "number" ? ` ×${tr.count}` : ""));
    let pos = `${num(tr.lat, 5)}, ${num(tr.lon, 5)}`;
    if (typeof tr.pos_err_m === "number") pos += ` ±${num(tr.pos_err_m)} ${t("unit_m")}`;
    parts.push(pos);
    if (typeof tr.alt_m === "number") {
      parts.push(`${num(tr.alt_m)} ${t("unit_m")} ${code("alt_ref", tr.alt_ref)}`);
    }
    if (typeof tr.heading_deg === "number") parts.push(`${num(tr.heading_deg)}${t("unit_deg")}`);
    if (typeof tr.speed_mps === "number") parts.push(`${num(tr.speed_mps)} ${t("unit_mps")}`);
    return parts.join(" · ");
  }

  function summaryLine(kind, body) {
    const bits = [];
    if (kind === "warning" || kind === "update") {
      bits.push(trackSummary(body));
      if (kind === "update") bits.push(t("updates_ref", { id: short(body.ref) }));
      if (body.advice) bits.push(`${t("f_advice")}: ${code("advice", body.advice)}`);
    } else if (kind === "cancel") {
      bits.push(t("cancels_ref", { id: short(body.ref) }));
      bits.push(`${t("f_reason")}: ${code("reason", body.reason)}`);
    }
    const text = bits.filter(Boolean).join(" — ");
    return text ? h("p", { class: "summary", text }) : null;
  }

  function countdown(body) {
    const p = body.predicted;
    if (!p || typeof p.crossing_at !== "number") return null;
    const e = h("p", {
      class: "countdown",
      dataset: { crossingAt: String(p.crossing_at), border: String(p.border) },
    });
    updateCountdown(e, Date.now());
    return e;
  }

  function updateCountdown(e, now) {
    const at = Number(e.dataset.crossingAt);
    const left = at - now;
    if (left > 0) {
      e.textContent = t("crossing_in", { border: e.dataset.border, time: clock(left) });
      e.dataset.passed = "false";
    } else {
      e.textContent = t("crossing_passed", { border: e.dataset.border, time: clock(-left) });
      e.dataset.passed = "true";
    }
  }

  /** Free text from a person: shown as written, marked untranslated, with its language. */
  function freeText(text, lang) {
    if (typeof text !== "string" || text === "") return null;
    const q = h("blockquote", { class: "freetext", dir: "auto" });
    if (typeof lang === "string" && /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(lang)) {
      q.setAttribute("lang", lang);
    }
    q.append(h("bdi", { class: "text", dir: "auto", text }));
    q.append(h("span", {
      class: "untranslated",
      text: lang ? t("untranslated_lang", { lang: langName(lang) }) : t("untranslated"),
    }));
    return q;
  }

  function detailsList(item, body, incoming) {
    const rows = [];
    const add = (key, value) => {
      if (value === null || value === undefined || value === "") return;
      rows.push(h("dt", { i18n: key }), h("dd", null, [value]));
    };
    const kind = item.t;
    add("d_type", code("t", kind));
    add("d_status", code("status", item.status));
    add("d_precedence", code("precedence", item.precedence));
    if (incoming) add("d_from", item.from);
    else add("d_to", (item.to || []).join(", "));
    add("d_sent", stamp(body.ts));
    if (incoming) add("d_received", stamp(item.received_ms));
    if (typeof body.expires === "number") add("d_expires", stamp(body.expires));
    add("d_incident", body.incident ? h("span", { class: "mono", text: body.incident }) : null);
    add("d_ref", body.ref ? h("span", { class: "mono", text: body.ref }) : null);
    const tr = body.track;
    if (tr) {
      add("d_observed", stamp(tr.observed_at));
      add("d_position", `${num(tr.lat, 5)}${t("unit_deg")}, ${num(tr.lon, 5)}${t("unit_deg")}`);
      if (typeof tr.pos_err_m === "number") add("f_pos_err", `${num(tr.pos_err_m)} ${t("unit_m")}`);
      if (typeof tr.alt_m === "number") {
        add("f_alt", `${num(tr.alt_m)} ${t("unit_m")} ${code("alt_ref", tr.alt_ref)}`);
      }
      if (typeof tr.heading_deg === "number") add("f_heading", `${num(tr.heading_deg)}${t("unit_deg")}`);
      if (typeof tr.speed_mps === "number") add("f_speed", `${num(tr.speed_mps)} ${t("unit_mps")}`);
      if (typeof tr.vrate_mps === "number") add("f_vrate", `${num(tr.vrate_mps)} ${t("unit_mps")}`);
      add("f_object", code("object", tr.object));
      if (typeof tr.count === "number") add("f_count", String(tr.count));
      add("f_confidence", pct(tr.confidence));
      add("f_source", code("source", tr.source));
      if (typeof tr.sensor_id === "string") add("f_sensor", tr.sensor_id);
    }
    const p = body.predicted;
    if (p) {
      add("f_border", p.border);
      add("d_crossing_at", stamp(p.crossing_at));
      if (typeof p.crossing_lat === "number" && typeof p.crossing_lon === "number") {
        add("d_crossing_point", `${num(p.crossing_lat, 5)}, ${num(p.crossing_lon, 5)}`);
      }
      if (typeof p.probability === "number") add("f_probability", pct(p.probability));
    }
    if (body.advice) add("f_advice", code("advice", body.advice));
    if (body.reason) add("f_reason", code("reason", body.reason));
    add("d_id", h("span", { class: "mono", text: item.id }));
    if (typeof item.index === "number") add("d_index", String(item.index));
    return h("dl", { class: "kv" }, rows);
  }

  function detailsBlock(item, body, incoming) {
    const id = item.id;
    const open = S.expanded.has(id);
    const panelId = `details-${incoming ? "in" : "out"}-${id}`;
    const btn = h("button", {
      type: "button",
      class: "details-toggle",
      "aria-expanded": open ? "true" : "false",
      "aria-controls": panelId,
      i18n: open ? "hide_details" : "show_details",
    });
    const head = h("p", { class: "status-line" }, [
      precedenceBadge(item.precedence), " ", statusBadge(item.status),
    ]);
    const panel = h("div", { class: "details", id: panelId, hidden: !open }, [
      head, detailsList(item, body, incoming),
    ]);
    btn.addEventListener("click", () => {
      const nowOpen = panel.hidden;
      panel.hidden = !nowOpen;
      btn.setAttribute("aria-expanded", nowOpen ? "true" : "false");
      btn.dataset.i18n = nowOpen ? "hide_details" : "show_details";
      btn.textContent = t(btn.dataset.i18n);
      if (nowOpen) S.expanded.add(id); else S.expanded.delete(id);
    });
    return [btn, panel];
  }

  // ------------------------------------------------------------------ views

  function wide() {
    return window.matchMedia("(min-width: 1000px)").matches;
  }

  /** Show a view: the only one on a narrow screen; on a wide one, ``outbox`` and ``links``
   * share the middle column. ``focus`` moves the keyboard focus to it. */
  function showView(view, focus) {
    if (!VIEWS.includes(view)) return;
    const body = document.body;
    body.dataset.view = view;
    if (view === "outbox" || view === "links") body.dataset.mid = view;
    for (const b of document.querySelectorAll(".view-tab")) {
      b.setAttribute("aria-current", b.dataset.view === view ? "true" : "false");
    }
    sessionStore(VIEW_KEY, view);
    if (view === "links") drawChart();
    if (focus) {
      const target = $(b2id(view));
      if (target) {
        target.focus({ preventScroll: true });
        if (target.scrollIntoView) target.scrollIntoView({ block: "start" });
      }
    }
  }

  function b2id(view) {
    return { inbox: "inbox-section", outbox: "outbox-section", links: "health-view",
      compose: "compose-section" }[view];
  }

  function setupViews() {
    for (const b of document.querySelectorAll(".view-tab")) {
      b.addEventListener("click", () => showView(b.dataset.view, true));
    }
    for (const a of document.querySelectorAll("a.skip")) {
      a.addEventListener("click", () => {
        showView(a.getAttribute("href") === "#compose-section" ? "compose" : "inbox", true);
      });
    }
    const kept = sessionRecall(VIEW_KEY);
    document.body.dataset.mid = "outbox";
    showView(VIEWS.includes(kept) ? kept : "inbox", false);
  }

  // ------------------------------------------------------------------ incoming

  function isAlarming(item) {
    return !item.acknowledged && ALARM_PRECEDENCE.has(item.precedence);
  }

  function ackForm(id) {
    const existing = S.ackForms.get(id);
    if (existing) return existing;
    const select = h("select", { name: "action", id: `ack-action-${id}`, class: "ack-action" });
    select.append(h("option", { value: "", i18n: "action_none" }));
    for (const v of codesOf("action")) select.append(h("option", { value: v, code: `action:${v}` }));
    const note = h("input", {
      type: "text", name: "note", maxlength: "1000", id: `ack-note-${id}`, class: "ack-note",
    });
    const error = h("p", { class: "ack-error", role: "alert" });
    const form = h("form", { class: "ack-form", dataset: { id } }, [
      h("label", { for: select.id }, [h("span", { i18n: "f_action" }), select]),
      h("label", { class: "note-input", for: note.id }, [h("span", { i18n: "f_note" }), note]),
      h("button", { type: "submit", class: "danger ack-submit", i18n: "acknowledge" }),
      error,
    ]);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      acknowledge(id, form, select, note, error);
    });
    S.ackForms.set(id, form);
    return form;
  }

  async function acknowledge(id, form, select, note, error) {
    const data = {};
    if (select.value) data.action = select.value;
    if (note.value.trim()) data.note = note.value;
    error.textContent = "";
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const r = await fetch(`/api/messages/${encodeURIComponent(id)}/ack`, {
        method: "POST",
        headers: window.HotlineLogin.headers({ "Content-Type": "application/json" }),
        body: JSON.stringify(data),
      });
      if (r.status === 401) window.HotlineLogin.expired();
      const answer = await r.json().catch(() => null);
      const item = S.inbox.get(id);
      if (r.status === 202 && item) {
        Object.assign(item, {
          acknowledged: true,
          acknowledged_ms: item.acknowledged_ms || Date.now(),
          action: data.action || null,
          note: data.note || null,
        });
        renderInbox();
        focusAfterAck(id);
      } else if (r.status === 409) {
        await reloadInbox();
      } else {
        error.textContent = answer && answer.detail
          ? `${answer.detail} (${answer.error})` : t("err_http", { status: r.status });
      }
    } catch (e) {
      error.textContent = t("err_network");
    } finally {
      button.disabled = false;
    }
  }

  function focusAfterAck(id) {
    const li = S.inboxEls.get(id);
    const done = li && li.querySelector(".ack-done");
    if (done) done.focus();
  }

  async function reloadInbox() {
    try {
      const data = await getJson("/api/inbox");
      for (const m of data.messages) S.inbox.set(m.id, m);
      renderInbox();
    } catch (e) { /* the event stream will bring it */ }
  }

  function buildIn(item) {
    const body = item.body || {};
    const alarming = isAlarming(item);
    const li = S.inboxEls.get(item.id) || h("li");
    li.className = [
      "msg", "in", `prec-${item.precedence}`, `status-${item.status}`,
      alarming ? "alarming" : "", item.acknowledged ? "acked" : "",
    ].filter(Boolean).join(" ");
    Object.assign(li.dataset, {
      id: item.id, precedence: item.precedence, status: item.status,
      t: item.t, acknowledged: item.acknowledged ? "true" : "false",
    });
    let state;
    if (item.acknowledged) state = h("span", { class: "badge state-ok", i18n: "acknowledged" });
    else if (S.overdueIn.has(item.id)) state = h("span", { class: "badge state-wait", i18n: "ack_overdue" });
    else state = h("span", { class: "badge state-wait", i18n: "awaiting_ack" });
    const head = h("div", { class: "head" }, [
      precedenceBadge(item.precedence),
      statusBadge(item.status),
      h("span", { class: "type", code: `t:${item.t}` }),
      h("span", { class: "who", text: t("from_party", { party: item.from }) }),
      body && body.operator ? h("bdi", { class: "operator", text: t("by_operator", { operator: body.operator }) }) : null,
      h("time", { text: hms(item.received_ms), title: stamp(item.received_ms) }),
      h("span", { class: "spacer" }),
      state,
    ]);
    const [toggle, details] = detailsBlock(item, body, true);
    let ackPart;
    if (item.acknowledged) {
      const bits = [t("acknowledged_at", { time: hms(item.acknowledged_ms) })];
      if (item.action) bits.push(code("action", item.action));
      if (item.ack_operator) bits.push(t("by_operator", { operator: item.ack_operator }));
      ackPart = h("p", { class: "ack-done", tabindex: "-1" }, [
        bits.join(" · "),
        item.note ? " — “" : "", item.note ? h("bdi", { dir: "auto", text: item.note }) : "",
        item.note ? "”" : "",
      ]);
      S.ackForms.delete(item.id);
    } else {
      ackPart = ackForm(item.id);
    }
    setChildren(li, [
      head,
      summaryLine(item.t, body),
      countdown(body),
      freeText(body.text, body.lang),
      toggle,
      details,
      ackPart,
    ].filter(Boolean));
    return li;
  }

  /**
   * Make ``nodes`` the children of ``parent``, leaving in place those already there, so a
   * kept acknowledgement form is never detached (the operator typing in it keeps focus).
   */
  function setChildren(parent, nodes) {
    const keep = new Set(nodes);
    for (const c of [...parent.childNodes]) if (!keep.has(c)) c.remove();
    let cursor = parent.firstChild;
    for (const n of nodes) {
      if (n === cursor) cursor = cursor.nextSibling;
      else parent.insertBefore(n, cursor);
    }
  }

  /** Put keyed elements in order without moving those already in place (keeps focus). */
  function placeInOrder(list, elements) {
    let cursor = list.firstElementChild;
    for (const e of elements) {
      if (cursor === e) {
        cursor = cursor.nextElementSibling;
      } else {
        list.insertBefore(e, cursor);
      }
    }
    while (cursor) {
      const next = cursor.nextElementSibling;
      cursor.remove();
      cursor = next;
    }
  }

  function renderInbox(force) {
    const items = [...S.inbox.values()]
      .filter((m) => ROUTED.has(m.t))
      .sort((a, b) => (b.received_ms - a.received_ms) || (b.index - a.index));
    const elements = [];
    for (const item of items) {
      const sig = JSON.stringify([item, S.overdueIn.has(item.id)]);
      let li = S.inboxEls.get(item.id);
      if (!li || force || li.hotlineSig !== sig) {
        li = buildIn(item);
        li.hotlineSig = sig;
        S.inboxEls.set(item.id, li);
      }
      elements.push(li);
    }
    placeInOrder($("inbox"), elements);
    $("inbox-empty").hidden = items.length > 0;
    const waiting = items.filter((m) => !m.acknowledged).length;
    $("inbox-count").textContent = waiting ? t("n_awaiting", { n: waiting }) : "";
    $("tab-inbox-count").textContent = waiting ? String(waiting) : "";
    renderBanner();
  }

  function renderBanner() {
    const alarming = [...S.inbox.values()]
      .filter((m) => ROUTED.has(m.t) && isAlarming(m))
      .sort((a, b) => b.received_ms - a.received_ms);
    const banner = $("alarm-banner");
    if (!alarming.length) {
      banner.hidden = true;
      delete banner.dataset.id;
      return;
    }
    const first = alarming[0];
    const parts = [code("precedence", first.precedence)];
    if (first.status !== "actual") parts.push(code("status", first.status));
    parts.push(t("kind_from", { kind: code("t", first.t), party: first.from }));
    parts.push(hms(first.received_ms));
    let text = parts.join(" · ");
    if (alarming.length > 1) text += ` ${t("more_waiting", { n: alarming.length - 1 })}`;
    $("alarm-text").textContent = text;
    banner.dataset.id = first.id;
    banner.dataset.precedence = first.precedence;
    banner.hidden = false;
  }

  /** The banner's Acknowledge: the incoming view, the message's acknowledgement form in
   * view (its details open), the focus in its action field. */
  function goToAlarm() {
    const id = $("alarm-banner").dataset.id;
    if (!id) return;
    showView("inbox", false);
    const li = S.inboxEls.get(id);
    const form = S.ackForms.get(id);
    const target = form ? form.querySelector("select") : li;
    if (li) li.scrollIntoView({ block: "center" });
    if (target) target.focus({ preventScroll: true });
  }

  // ------------------------------------------------------------------ outgoing

  function stageCell(stage, at, created, extra, cls) {
    const td = h("td", { dataset: { stage }, class: cls || (at ? "reached" : "") });
    if (typeof at === "number") {
      td.append(h("time", { text: hms(at), title: stamp(at) }));
      if (typeof created === "number") td.append(" ", h("span", { class: "lat", text: `+${dur(at - created)}` }));
    }
    for (const x of extra || []) td.append(x);
    return td;
  }

  function recipientRow(item, party) {
    const r = (item.recipients && item.recipients[party]) || {};
    const created = item.created_ms;
    const accepted = item.accepted;
    const reached = r.state || "queued"; // the endpoint's lifecycle state, never derived here

    const acceptedCell = accepted
      ? stageCell("accepted", accepted.received_ms, created)
      : stageCell("accepted", null, created,
        [item.rejected ? h("span", { code: "stage:rejected" }) : h("span", { i18n: "waiting" })],
        item.rejected ? "rejected" : "");

    let deliveredCell;
    if (reached === "rejected") {
      deliveredCell = stageCell("delivered", r.rejected.received_ms, created,
        [" ", h("strong", { code: "stage:rejected" }), r.rejected.reason ? ` — ${r.rejected.reason}` : ""],
        "rejected");
    } else if (r.delivered || reached === "acknowledged") {
      deliveredCell = stageCell("delivered", r.delivered ? r.delivered.received_ms : null, created,
        [], "reached");
    } else {
      const late = S.overdueOut.has(`${item.id}|${party}|delivered`);
      const offline = S.online.get(party) === false;
      const words = late ? h("span", { i18n: "overdue" }) : offline
        ? h("span", { class: "offline-note", text: t("waiting_offline", { party }) })
        : h("span", { i18n: "waiting" });
      const extra = late && offline
        ? [words, " ", h("span", { class: "offline-note", text: t("waiting_offline", { party }) })]
        : [words];
      deliveredCell = stageCell("delivered", null, created, extra,
        late ? "overdue" : offline ? "offline" : "");
    }

    let ackCell;
    if (r.acknowledged) {
      const a = r.acknowledged;
      const extra = [];
      if (a.action) extra.push(" · ", h("span", { class: "action", code: `action:${a.action}` }));
      if (a.operator) {
        extra.push(" · ", h("bdi", { class: "operator", text: t("by_operator", { operator: a.operator }) }));
      }
      if (a.note) {
        extra.push(" — “", h("bdi", { class: "freetext-inline", dir: "auto", text: a.note }), "”");
        extra.push(h("span", { class: "untranslated", text: t("untranslated") }));
      }
      ackCell = stageCell("acknowledged", a.received_ms, created, extra);
      if (a.action) ackCell.dataset.action = a.action;
    } else if (reached === "rejected") {
      ackCell = stageCell("acknowledged", null, created, ["—"]);
    } else {
      const late = S.overdueOut.has(`${item.id}|${party}|acknowledged`);
      ackCell = stageCell("acknowledged", null, created,
        [h("span", { i18n: late ? "overdue" : "waiting" })], late ? "overdue" : "");
    }
    return h("tr", { dataset: { party, stage: reached } }, [
      h("th", { scope: "row", text: party }), acceptedCell, deliveredCell, ackCell,
    ]);
  }

  function buildOut(item) {
    const body = item.body || {};
    const li = S.outboxEls.get(item.id) || h("li");
    li.className = ["msg", "out", `prec-${item.precedence}`, `status-${item.status}`].join(" ");
    Object.assign(li.dataset, { id: item.id, precedence: item.precedence, status: item.status, t: item.t });
    const parties = Object.keys(item.recipients || {});
    const head = h("div", { class: "head" }, [
      precedenceBadge(item.precedence),
      statusBadge(item.status),
      h("span", { class: "type", code: `t:${item.t}` }),
      h("span", { class: "who", text: t("to_parties", { parties: (item.to || parties).join(", ") }) }),
      h("time", { text: hms(item.created_ms), title: stamp(item.created_ms) }),
      h("span", { class: "spacer" }),
      h("span", { class: "mono", text: short(item.id) }),
    ]);
    const table = h("table", { class: "stages" }, [
      h("thead", null, [h("tr", null, [
        h("th", { scope: "col", i18n: "col_recipient" }),
        h("th", { scope: "col", i18n: "stage_accepted" }),
        h("th", { scope: "col", code: "stage:delivered" }),
        h("th", { scope: "col", code: "stage:acknowledged" }),
      ])]),
      h("tbody", null, parties.map((p) => recipientRow(item, p))),
    ]);
    const rejected = item.rejected
      ? h("p", {
        class: "rejected-line",
        text: t("rejected_by_relay", { code: item.rejected.code, sentence: item.rejected.sentence }),
      })
      : null;
    const [toggle, details] = detailsBlock(item, body, false);
    li.replaceChildren(...[
      head,
      summaryLine(item.t, body),
      countdown(body),
      freeText(body.text, body.lang),
      rejected,
      table,
      toggle,
      details,
    ].filter(Boolean));
    return li;
  }

  function renderOutbox(force) {
    const items = [...S.outbox.values()].sort((a, b) => b.created_ms - a.created_ms);
    const elements = [];
    for (const item of items) {
      const flags = Object.keys(item.recipients || {}).map((p) => [
        S.overdueOut.has(`${item.id}|${p}|delivered`), S.overdueOut.has(`${item.id}|${p}|acknowledged`),
      ]);
      const offline = Object.keys(item.recipients || {}).map((p) => S.online.get(p) === false);
      const sig = JSON.stringify([item, flags, offline]);
      let li = S.outboxEls.get(item.id);
      if (!li || force || li.hotlineSig !== sig) {
        li = buildOut(item);
        li.hotlineSig = sig;
        S.outboxEls.set(item.id, li);
      }
      elements.push(li);
    }
    placeInOrder($("outbox"), elements);
    $("outbox-empty").hidden = items.length > 0;
    renderRefOptions();
  }

  function outboxItemFromQueued(ev) {
    const recipients = {};
    for (const p of ev.to) {
      recipients[p] = { delivered: null, acknowledged: null, rejected: null, state: (ev.states || {})[p] };
    }
    return {
      id: ev.id, t: ev.t, to: ev.to, precedence: ev.precedence, status: ev.status,
      incident: ev.body ? ev.body.incident || null : null, created_ms: ev.created_ms,
      body: ev.body, accepted: null, rejected: null, recipients,
    };
  }

  // ------------------------------------------------------------------ links and chart

  async function pollLinks() {
    try {
      S.links = await getJson("/api/links");
      if (S.links.relay) S.relayConnected = !!S.links.relay.connected;
      if (S.links.link_test) S.linkTest = S.links.link_test;
      noteOnline(Date.now());
      renderLinks();
      renderStates();
      renderOutbox();
    } catch (e) {
      /* the next poll tries again */
    }
    await loadHistory();
    setTimeout(pollLinks, LINKS_POLL_MS);
  }

  /** The chart's series from the endpoint's journal, so a reload keeps its history. */
  async function loadHistory() {
    try {
      const data = await getJson(`/api/links/history?window_s=${CHART_WINDOW_MS / 1000}`);
      const test = S.series.get("test");
      S.series = new Map();
      for (const [key, points] of Object.entries(data.series || {})) {
        S.series.set(key, points.map(([at, v]) => ({ t: at, v })));
      }
      if (test) S.series.set("test", test);
      drawChart();
    } catch (e) {
      /* the next poll tries again */
    }
  }

  function addPoint(key, point) {
    let s = S.series.get(key);
    if (!s) { s = []; S.series.set(key, s); }
    s.push(point);
    if (s.length > MAX_POINTS) s.splice(0, s.length - MAX_POINTS);
  }

  /** Which peers the relay sees connected (one never connected counts as offline); a peer
   * offline longer than the flash delivery
   * deadline (the tightest promise on its link) raises one alarm per outage. */
  function noteOnline(now) {
    const rl = S.links && S.links.relay_links;
    if (!rl || !S.config) return;
    const threshold = S.config.offline_alarm_ms || 0;
    for (const hop of rl.hops || []) {
      if (!S.config.peers.includes(hop.endpoint)) continue;
      const online = hop.connected === true;  // null: not connected since the log began
      S.online.set(hop.endpoint, online);
      if (online) {
        S.offlineSince.delete(hop.endpoint);
        S.offlineAlarmed.delete(hop.endpoint);
        continue;
      }
      if (!S.offlineSince.has(hop.endpoint)) S.offlineSince.set(hop.endpoint, now);
      const since = S.offlineSince.get(hop.endpoint);
      if (now - since >= threshold && !S.offlineAlarmed.has(hop.endpoint)) {
        S.offlineAlarmed.add(hop.endpoint);
        pushAlarm({ event: "peer_offline", party: hop.endpoint, since_ms: since, at_ms: now, live: true });
      }
    }
    renderOfflineMarks();
    const off = S.config.peers.filter((p) => S.online.get(p) === false);
    $("tab-links-state").textContent = off.length ? `${t("online_no")}: ${off.join(", ")}` : "";
  }

  /** "offline" next to each recipient box in the compose form whose endpoint is offline. */
  function renderOfflineMarks() {
    for (const box of document.querySelectorAll('#to-boxes input[name="to"]')) {
      const holder = box.parentElement;
      let mark = holder.querySelector(".offline-mark");
      const offline = S.online.get(box.value) === false;
      if (offline && !mark) {
        mark = h("span", { class: "offline-mark", i18n: "online_no" });
        holder.append(" ", mark);
      } else if (!offline && mark) {
        mark.remove();
      }
      holder.dataset.online = offline ? "false" : "true";
    }
  }

  function latencyPair(l) {
    if (!l || typeof l.p50 !== "number") return "—";
    return `${num(l.p50)} / ${num(l.p99)} ${t("unit_ms")}`;
  }

  function onlineCell(v) {
    const td = h("td");
    const state = v === true ? "on" : v === false ? "off" : "";
    td.append(h("span", { class: `dot ${state}`, "aria-hidden": "true" }));
    td.append(h("span", { i18n: v === true ? "online_yes" : v === false ? "online_no" : "unknown" }));
    return td;
  }

  /** Several relays: each relay's hop to us, then every link once per relay (its own
   *  figures), with how many messages from the peer that relay delivered to us first. */
  function pathRows(me) {
    const rows = [];
    const firsts = {};
    for (const p of S.links.paths || []) {
      if (p.direction === "in") firsts[`${p.peer}/${p.relay}`] = p.first;
    }
    for (const relay of S.links.relays) {
      const rl = relay.relay_links;
      const hops = rl && rl.hops ? rl.hops : [];
      const myHop = hops.find((x) => x.endpoint === me);
      rows.push(h("tr", { dataset: { link: "relay", relay: relay.id } }, [
        h("th", { scope: "row", text: t("relay_path_hop", { me, relay: relay.id }) }),
        onlineCell(relay.connected),
        h("td", null, [typeof relay.last_test_ms === "number"
          ? h("span", { dataset: { since: String(relay.last_test_ms) }, text: ago(relay.last_test_ms) })
          : h("span", { i18n: "never" })]),
        h("td", { class: "num", text: myHop ? `${t("rtt")} ${latencyPair(myHop.rtt_ms)}` : "—" }),
        h("td", { class: "num", text: myHop ? pct(myHop.availability) : "—" }),
      ]));
      for (const peer of S.config.peers) {
        const hop = hops.find((x) => x.endpoint === peer);
        const link = rl && rl.links ? rl.links.find((x) => x.from === me && x.to === peer) : null;
        const first = firsts[`${peer}/${relay.id}`] || 0;
        rows.push(h("tr", { dataset: { link: peer, relay: relay.id } }, [
          h("th", { scope: "row", text: `${t("path_link", { me, peer, relay: relay.id })} · ${t("path_first", { first })}` }),
          onlineCell(hop ? hop.connected : null),
          h("td", { class: "num", text: hop ? t("tests_answered", { answered: hop.answered, tests: hop.tests }) : "—" }),
          h("td", { class: "num", text: link ? latencyPair(link.delivery_ms) : "—" }),
          h("td", { class: "num", text: link ? pct(link.availability) : "—" }),
        ]));
      }
    }
    return rows;
  }

  function renderLinks() {
    const tbody = $("links");
    if (!S.config) return;
    const me = S.config.endpoint;
    if (S.links && Array.isArray(S.links.relays)) {
      tbody.replaceChildren(...pathRows(me));
      const note = $("links-note");
      delete note.dataset.i18n; note.textContent = "";
      return;
    }
    const rl = S.links ? S.links.relay_links : null;
    const hops = rl && rl.hops ? rl.hops : [];
    const rows = [];
    const myHop = hops.find((x) => x.endpoint === me);
    const lt = S.linkTest || {};
    const since = typeof lt.last_answered_ms === "number"
      ? h("span", { dataset: { since: String(lt.last_answered_ms) }, text: ago(lt.last_answered_ms) })
      : h("span", { i18n: "never" });
    rows.push(h("tr", { dataset: { link: "relay" } }, [
      h("th", { scope: "row", text: t("relay_hop", { me }) }),
      onlineCell(S.relayConnected),
      h("td", null, [since]),
      h("td", { class: "num", text: myHop ? `${t("rtt")} ${latencyPair(myHop.rtt_ms)}` : "—" }),
      h("td", { class: "num", text: myHop ? pct(myHop.availability) : "—" }),
    ]));
    for (const peer of S.config.peers) {
      const hop = hops.find((x) => x.endpoint === peer);
      const link = rl && rl.links ? rl.links.find((x) => x.from === me && x.to === peer) : null;
      rows.push(h("tr", { dataset: { link: peer } }, [
        h("th", { scope: "row", text: `${me} → ${peer}` }),
        onlineCell(hop ? hop.connected : null),
        h("td", { class: "num", text: hop ? t("tests_answered", { answered: hop.answered, tests: hop.tests }) : "—" }),
        h("td", { class: "num", text: link ? latencyPair(link.delivery_ms) : "—" }),
        h("td", { class: "num", text: link ? pct(link.availability) : "—" }),
      ]));
    }
    tbody.replaceChildren(...rows);
    const note = $("links-note");
    if (S.links && !rl) { note.dataset.i18n = "relay_figures_unavailable"; note.textContent = t("relay_figures_unavailable"); }
    else { delete note.dataset.i18n; note.textContent = ""; }
  }

  function ago(ms) {
    return t("ago", { time: dur(Date.now() - ms) });
  }

  function seriesLabel(key) {
    const me = S.config ? S.config.endpoint : "";
    if (key === "test") return t("chart_link_test", { me });
    if (key === "accepted") return t("chart_accepted", { me });
    return t("chart_delivered", { link: `${me} → ${key.slice(key.indexOf("/") + 1)}` });
  }

  /** The latency chart on a logarithmic axis (1 ms to a power of ten above the highest
   * point), so one slow delivery does not flatten every other line; the points of the
   * slowest one percent are drawn as red dots. */
  function drawChart() {
    const svg = $("latency-chart");
    const NS = svg.namespaceURI;
    const W = 400, H = 150, L = 44, R = 8, T = 8, B = 18;
    const now = Date.now();
    const keys = [...S.series.keys()].sort();
    let earliest = now;
    for (const k of keys) for (const p of S.series.get(k)) if (p.t >= now - CHART_WINDOW_MS) earliest = Math.min(earliest, p.t);
    // the window: the history there is, between 5 and 30 minutes, in whole minutes
    const span = Math.min(CHART_WINDOW_MS, Math.max(5 * 60000, Math.ceil((now - earliest) / 60000) * 60000));
    const x0 = now - span;
    const values = [];
    for (const k of keys) for (const p of S.series.get(k)) if (p.t >= x0) values.push(Math.max(1, p.v));
    values.sort((a, b) => a - b);
    const max = values.length ? values[values.length - 1] : 10;
    const p99 = values.length ? values[Math.floor((values.length - 1) * 0.99)] : max;
    const decades = Math.max(1, Math.ceil(Math.log10(Math.max(max, 10)) - 1e-9));
    const sx = (time) => L + ((time - x0) / span) * (W - L - R);
    const sy = (v) => T + (1 - Math.log10(Math.max(1, v)) / decades) * (H - T - B);
    const el = (tag, attrs, text) => {
      const e = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
      if (text !== undefined) e.textContent = text;
      return e;
    };
    const parts = [];
    for (let d = 0; d <= decades; d++) {
      const y = sy(10 ** d);
      parts.push(el("line", { x1: L, x2: W - R, y1: y, y2: y, class: d === 0 ? "axis" : "grid-line" }));
      parts.push(el("text", { x: L - 4, y: y + 3, "text-anchor": "end", class: "tick" }, tickText(10 ** d)));
    }
    parts.push(el("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
    parts.push(el("text", { x: L, y: H - 4, class: "tick" }, t("chart_window", { n: span / 60000 })));
    parts.push(el("text", { x: W - R, y: H - 4, "text-anchor": "end", class: "tick" }, t("chart_now")));
    const legend = [];
    keys.forEach((k, i) => {
      const pts = S.series.get(k).filter((p) => p.t >= x0);
      if (!pts.length) return;
      const cls = `c${i % 7}`;
      const group = el("g", { class: `series-group ${cls}`, "data-series": k });
      const d = pts.map((p) => `${sx(p.t).toFixed(1)},${sy(p.v).toFixed(1)}`).join(" ");
      if (pts.length > 1) group.append(el("polyline", { points: d, class: `series ${cls}` }));
      for (const p of pts) {
        const outlier = values.length >= 20 && p.v > p99;
        const dot = el("circle", {
          cx: sx(p.t).toFixed(1), cy: sy(p.v).toFixed(1), r: outlier ? 3 : 1.8,
          class: outlier ? "outlier" : `point ${cls}`,
        });
        dot.append(el("title", {}, `${seriesLabel(k)}: ${num(p.v)} ${t("unit_ms")}`));
        group.append(dot);
      }
      parts.push(group);
      legend.push(h("li", { dataset: { series: k } }, [
        h("span", { class: `swatch ${cls}`, "aria-hidden": "true" }), seriesLabel(k)]));
    });
    if (!legend.length) {
      parts.push(el("text", { x: (L + W - R) / 2, y: (T + H - B) / 2, "text-anchor": "middle", class: "no-data" },
        t("chart_no_data")));
    }
    svg.replaceChildren(...parts);
    $("chart-legend").replaceChildren(...legend);
  }

  function tickText(ms) {
    if (ms >= 1000) return `${ms / 1000} ${t("unit_s")}`;
    return `${ms} ${t("unit_ms")}`;
  }

  // ------------------------------------------------------------------ checkpoint, alarms, states

  function renderCheckpoint() {
    const c = S.checkpoint || {};
    const box = $("checkpoint");
    const verdict = $("checkpoint-verdict");
    if (c.consistent === true) {
      box.dataset.consistent = "true";
      verdict.textContent = t(c.cosigned === false ? "checkpoint_consistent" : "checkpoint_consistent_cosigned");
    } else if (c.consistent === false) {
      box.dataset.consistent = "false";
      verdict.textContent = t("checkpoint_inconsistent", { reason: c.reason || "" });
    } else {
      box.dataset.consistent = "unknown";
      verdict.textContent = t("checkpoint_none");
    }
    $("checkpoint-size").textContent = typeof c.size === "number" ? String(c.size) : "—";
    $("checkpoint-root").textContent = c.root || "—";
    const age = $("checkpoint-age");
    if (typeof c.at_ms === "number") {
      age.dataset.since = String(c.at_ms);
      age.textContent = ago(c.at_ms);
    } else {
      delete age.dataset.since;
      age.textContent = "—";
    }
  }

  function alarmFromHistory(rec) {
    return Object.assign({}, rec.detail || {}, {
      event: rec.event, at_ms: rec.at_ms, id: rec.ref, party: rec.party,
      from: rec.party, stage: rec.stage, live: false,
    });
  }

  function alarmText(a) {
    switch (a.event) {
      case "overdue":
        if (a.role === "recipient") {
          return t("alarm_overdue_recipient", {
            id: short(a.id), party: a.party, precedence: code("precedence", a.precedence),
          });
        }
        return t("alarm_overdue_sender", {
          party: a.party, stage: code("stage", a.stage), id: short(a.id),
          precedence: code("precedence", a.precedence),
        });
      case "message_rejected":
        return t("alarm_rejected", { id: short(a.id), code: a.code, sentence: a.sentence });
      case "delivery_refused":
        return t("alarm_refused", { party: a.from || "?", code: a.code, sentence: a.sentence });
      case "checkpoint_inconsistent":
        return t("alarm_checkpoint_inconsistent", { size: a.size, reason: a.reason });
      case "checkpoint_refused":
        return t("alarm_checkpoint_refused", { reason: a.reason });
      case "relay_unavailable":
        return t("alarm_relay_unavailable", {
          seconds: Math.round((a.at_ms - a.since_ms) / 1000), waiting: a.waiting, reason: a.reason,
        });
      case "peer_offline":
        return t("peer_offline_for", { party: a.party, time: dur(a.at_ms - a.since_ms) });
      default:
        // the relay caught out (docs/threat-model.md): the kind, then the evidence's sentence
        if (a.sentence) return t("alarm_relay", { what: code("event", a.event), sentence: a.sentence });
        return code("event", a.event);
    }
  }

  function noteOverdue(a) {
    if (a.event !== "overdue" || !a.id) return;
    if (a.role === "recipient") S.overdueIn.add(a.id);
    else S.overdueOut.add(`${a.id}|${a.party}|${a.stage}`);
  }

  function renderAlarms() {
    const list = $("alarms");
    const items = S.alarms.map((a, i) => h("li", {
      class: i < S.unseen ? "" : "old", dataset: { event: a.event },
    }, [
      h("time", { text: hms(a.at_ms), title: stamp(a.at_ms) }),
      a.event === "peer_offline" ? h("strong", { i18n: "peer_offline" }) : h("strong", { code: `event:${a.event}` }),
      ": ",
      alarmText(a),
    ]));
    list.replaceChildren(...items);
    $("alarms-empty").hidden = items.length > 0;
    const banner = $("system-banner");
    if (S.unseen > 0 && S.alarms.length) {
      const first = S.alarms[0];
      const title = first.event === "peer_offline" ? t("peer_offline") : code("event", first.event);
      let text = `${title}: ${alarmText(first)}`;
      if (S.unseen > 1) text += ` ${t("more_alarms", { n: S.unseen - 1 })}`;
      $("system-text").textContent = text;
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
  }

  function pushAlarm(a) {
    S.alarmHigh = Math.max(S.alarmHigh, a.at_ms || 0);
    S.alarms.unshift(a);
    if (S.alarms.length > MAX_ALARMS) S.alarms.length = MAX_ALARMS;
    S.unseen = Math.min(S.unseen + 1, S.alarms.length);
    noteOverdue(a);
    renderAlarms();
    beep();
  }

  function setPill(id, state, key) {
    const p = $(id);
    p.dataset.state = state;
    p.dataset.i18n = key;
    p.textContent = t(key);
  }

  function renderStates() {
    if (S.relayConnected === true) setPill("relay-state", "connected", "relay_connected");
    else if (S.relayConnected === false) setPill("relay-state", "disconnected", "relay_disconnected");
    else setPill("relay-state", "unknown", "relay_unknown");
    const live = { open: "live_open", connecting: "live_connecting", closed: "live_closed" };
    setPill("sse-state", S.sse, live[S.sse]);
  }

  // ------------------------------------------------------------------ sound

  function beep() {
    if (!S.sound) return;
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      S.audio = S.audio || new Ctx();
      const ctx = S.audio;
      const start = ctx.currentTime + 0.02;
      for (let i = 0; i < 3; i++) {
        const o = ctx.createOscillator();
        const g = ctx.createGain();
        const at = start + i * 0.3;
        o.type = "square";
        o.frequency.value = 880;
        g.gain.setValueAtTime(0.0001, at);
        g.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
        g.gain.exponentialRampToValueAtTime(0.0001, at + 0.2);
        o.connect(g);
        g.connect(ctx.destination);
        o.start(at);
        o.stop(at + 0.22);
      }
    } catch (e) { /* no audio: the banner still shows */ }
  }

  // ------------------------------------------------------------------ the event stream

  function connect() {
    S.sse = "connecting";
    renderStates();
    const es = new EventSource("/api/events");
    S.es = es;
    es.onopen = () => {
      S.sse = "open";
      S.retryMs = 1000;
      renderStates();
    };
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        // the browser gave up (the server answered with an error): try again later
        S.sse = "closed";
        renderStates();
        setTimeout(connect, S.retryMs);
        S.retryMs = Math.min(S.retryMs * 2, 30000);
      } else {
        S.sse = "connecting";
        renderStates();
      }
    };
    es.addEventListener("snapshot", (m) => onSnapshot(JSON.parse(m.data)));
    for (const name of EVENT_NAMES) {
      es.addEventListener(name, (m) => onEvent(JSON.parse(m.data)));
    }
  }

  function onSnapshot(s) {
    for (const m of s.inbox || []) S.inbox.set(m.id, m);
    for (const m of s.outbox || []) S.outbox.set(m.id, m);
    S.checkpoint = s.checkpoint || null;
    S.linkTest = s.link_test || null;
    S.relayConnected = !!s.connected;
    // alarms: history on the first snapshot; after a reconnect, those raised meanwhile are new
    const before = S.alarmHigh;
    S.alarms = (s.alarms || []).map(alarmFromHistory);
    const fresh = S.snapshots > 0 ? S.alarms.filter((a) => a.at_ms > before).length : 0;
    S.unseen = S.snapshots > 0 ? Math.min(S.alarms.length, S.unseen + fresh) : 0;
    for (const a of S.alarms) S.alarmHigh = Math.max(S.alarmHigh, a.at_ms || 0);
    S.snapshots += 1;
    S.overdueIn.clear();
    S.overdueOut.clear();
    for (const a of S.alarms) noteOverdue(a);
    renderAll(false);
    if (fresh) beep();
    document.body.dataset.ready = "true";
  }

  function onEvent(e) {
    switch (e.event) {
      case "message_received": {
        if (!ROUTED.has(e.t)) break;
        const known = S.inbox.get(e.id);
        if (known) break;
        S.inbox.set(e.id, {
          id: e.id, from: e.from, t: e.t, precedence: e.precedence, status: e.status,
          incident: e.body ? e.body.incident || null : null, sent_ts: e.body ? e.body.ts : null,
          received_ms: e.received_ms, index: e.index, body: e.body,
          stages: { delivered: null, acknowledged: null }, acknowledged: false,
          acknowledged_ms: null, action: null, note: null, duplicates: 0,
        });
        renderInbox();
        if (ALARM_PRECEDENCE.has(e.precedence)) beep();
        break;
      }
      case "message_acknowledged": {
        const item = S.inbox.get(e.id);
        if (item) {
          Object.assign(item, {
            acknowledged: true, acknowledged_ms: e.acknowledged_ms, action: e.action, note: e.note,
            ack_operator: e.operator || null,
          });
          S.overdueIn.delete(e.id);
          renderInbox();
        }
        break;
      }
      case "message_queued":
        if (ROUTED.has(e.t) && !S.outbox.has(e.id)) {
          S.outbox.set(e.id, outboxItemFromQueued(e));
          renderOutbox();
        }
        break;
      case "message_accepted": {
        const item = S.outbox.get(e.id);
        if (!e.receipt && item) {
          item.accepted = { index: e.index, ts: e.ts, received_ms: e.received_ms };
          for (const [p, state] of Object.entries(e.states || {})) {
            if (item.recipients && item.recipients[p]) item.recipients[p].state = state;
          }
          renderOutbox();
        }
        break;
      }
      case "receipt_stored": {
        const item = S.outbox.get(e.ref);
        if (item) {
          item.recipients = item.recipients || {};
          const r = item.recipients[e.party] || (item.recipients[e.party] = {});
          const stage = { ts: e.ts, received_ms: e.received_ms, index: e.index };
          if (e.action) stage.action = e.action;
          if (e.note) stage.note = e.note;
          if (e.operator) stage.operator = e.operator;
          if (e.reason) stage.reason = e.reason;
          r[e.stage] = stage;
          r.state = e.state;
          renderOutbox();
        }
        break;
      }
      case "message_rejected": {
        const item = e.id ? S.outbox.get(e.id) : null;
        if (item && !e.receipt) {
          item.rejected = { code: e.code, sentence: e.sentence, path: e.path, at_ms: e.received_ms };
          renderOutbox();
        }
        pushAlarm({ ...e, at_ms: e.received_ms, live: true });
        break;
      }
      case "delivery_refused":
        pushAlarm({ ...e, at_ms: e.received_ms, live: true });
        break;
      case "overdue":
        pushAlarm({ ...e, live: true });
        renderInbox();
        renderOutbox();
        break;
      case "link_test_answered":
        S.linkTest = Object.assign({}, S.linkTest || {}, {
          last_test_id: e.id, last_answered_ms: e.received_ms,
          answered: ((S.linkTest && S.linkTest.answered) || 0) + 1,
        });
        addPoint("test", { t: e.received_ms, v: Math.max(0, e.received_ms - e.ts) });
        renderLinks();
        drawChart();
        break;
      case "checkpoint_witnessed":
        S.checkpoint = {
          size: e.size, root: e.root, at_ms: e.at_ms, consistent: true, cosigned: true, reason: null,
        };
        renderCheckpoint();
        break;
      case "checkpoint_inconsistent":
        S.checkpoint = {
          size: e.size, root: e.root, at_ms: e.at_ms, consistent: false, cosigned: false,
          reason: e.reason,
        };
        renderCheckpoint();
        pushAlarm({ ...e, live: true });
        break;
      case "checkpoint_refused":
      case "relay_unavailable":
        pushAlarm({ ...e, live: true });
        break;
      case "relay_connected":
        S.relayConnected = true;
        renderStates();
        renderLinks();
        break;
      case "relay_disconnected":
        S.relayConnected = false;
        renderStates();
        renderLinks();
        break;
      default:
        if (e.alarm) pushAlarm({ ...e, live: true }); // the relay caught out: its own kind
        break;
    }
  }

  // ------------------------------------------------------------------ compose

  function composeType() {
    const checked = document.querySelector('#compose input[name="t"]:checked');
    return checked ? checked.value : "warning";
  }

  function showComposeFields() {
    const kind = composeType();
    for (const e of $("compose").querySelectorAll("[data-types]")) {
      e.hidden = !e.dataset.types.split(" ").includes(kind);
    }
    renderRefOptions();
  }

  function fillCodeSelect(select, defaultValue) {
    const group = select.dataset.codes;
    select.replaceChildren();
    if (select.dataset.optional === "true") select.append(h("option", { value: "", i18n: "none_selected" }));
    for (const v of codesOf(group)) {
      const o = h("option", { value: v, code: `${group}:${v}` });
      if (v === defaultValue) { o.defaultSelected = true; o.selected = true; }
      select.append(o);
    }
  }

  function setupCompose() {
    const cfg = S.config;
    fillCodeSelect($("f-status"), "actual");
    fillCodeSelect($("f-precedence"), "immediate");
    fillCodeSelect($("f-alt-ref"), "agl");
    fillCodeSelect($("f-object"), "uav");
    fillCodeSelect($("f-source"), "radar");
    fillCodeSelect($("f-advice"), "");
    fillCodeSelect($("f-reason"), "resolved");

    const boxes = [];
    for (const peer of cfg.peers) {
      const id = `to-${peer}`;
      boxes.push(h("span", null, [
        h("input", { type: "checkbox", name: "to", value: peer, id }), " ",
        h("label", { for: id, text: peer }),
      ]));
    }
    boxes.push(h("span", null, [
      h("input", { type: "checkbox", name: "to", value: "*", id: "to-all" }), " ",
      h("label", { for: "to-all", i18n: "to_all" }),
    ]));
    $("to-boxes").replaceChildren(...boxes);

    const borders = [];
    for (const peer of cfg.peers) {
      if (!peer.includes("-") && !cfg.endpoint.includes("-")) {
        borders.push(h("option", { value: `${cfg.endpoint}-${peer}` }));
        borders.push(h("option", { value: `${peer}-${cfg.endpoint}` }));
      }
    }
    $("borders").replaceChildren(...borders);

    const textLang = $("f-lang");
    textLang.replaceChildren(...cfg.languages.map((l) => {
      const o = h("option", { value: l, text: NATIVE[l] || l });
      if (l === S.lang) { o.defaultSelected = true; o.selected = true; }
      return o;
    }));

    const form = $("compose");
    for (const r of form.querySelectorAll('input[name="t"]')) r.addEventListener("change", showComposeFields);
    $("f-ref").addEventListener("change", prefillFromRef);
    form.addEventListener("submit", submitCompose);
    form.addEventListener("reset", () => {
      clearErrors();
      clearDraft();
      $("compose-status").textContent = "";
      setTimeout(showComposeFields, 0);
    });
    form.addEventListener("input", (ev) => {
      const field = ev.target.closest(".field");
      if (field) clearFieldError(field);
      saveDraft();
    });
    form.addEventListener("change", saveDraft);
    showComposeFields();
    restoreDraft();
  }

  /** The compose form's values, kept in the tab's session storage so a reload keeps them. */
  function saveDraft() {
    const form = $("compose");
    const draft = { t: composeType(), to: [], values: {} };
    for (const box of form.querySelectorAll('input[name="to"]')) if (box.checked) draft.to.push(box.value);
    for (const e of form.querySelectorAll("input[id], select[id], textarea[id]")) {
      if (e.type === "radio" || e.type === "checkbox") continue;
      draft.values[e.id] = e.value;
    }
    sessionStore(`${DRAFT_KEY}.${S.config.endpoint}`, JSON.stringify(draft));
  }

  function restoreDraft() {
    let draft = null;
    try { draft = JSON.parse(sessionRecall(`${DRAFT_KEY}.${S.config.endpoint}`) || "null"); } catch (e) { draft = null; }
    if (!draft || typeof draft !== "object") return;
    const radio = document.querySelector(`#compose input[name="t"][value="${draft.t}"]`);
    if (radio) radio.checked = true;
    const to = Array.isArray(draft.to) ? draft.to : [];
    for (const box of document.querySelectorAll('#compose input[name="to"]')) box.checked = to.includes(box.value);
    for (const [id, value] of Object.entries(draft.values || {})) {
      const e = $(id);
      if (!e || !$("compose").contains(e) || typeof value !== "string") continue;
      if (id === "f-ref") { S.draftRef = value; continue; }
      e.value = value;
    }
    showComposeFields();
  }

  function clearDraft() {
    sessionStore(`${DRAFT_KEY}.${S.config.endpoint}`, null);
  }

  function renderRefOptions() {
    const select = $("f-ref");
    if (!select) return;
    const current = select.value;
    const usable = [...S.outbox.values()]
      .filter((m) => m.t === "warning" || m.t === "update")
      .filter((m) => !m.rejected)
      .sort((a, b) => b.created_ms - a.created_ms);
    const options = [h("option", { value: "", i18n: usable.length ? "choose_ref" : "no_ref" })];
    for (const m of usable) {
      const label = [
        short(m.id), code("t", m.t), code("precedence", m.precedence),
        m.status !== "actual" ? code("status", m.status).toUpperCase() : null,
        hms(m.created_ms), `→ ${(m.to || []).join(", ")}`,
      ].filter(Boolean).join(" · ");
      options.push(h("option", { value: m.id, text: label }));
    }
    const same = select.options.length === options.length
      && [...select.options].every((o, i) => o.value === options[i].value && o.textContent === options[i].textContent);
    if (!same) {
      select.replaceChildren(...options);
      select.value = usable.some((m) => m.id === current) ? current : "";
    }
    if (S.draftRef && usable.some((m) => m.id === S.draftRef)) {
      select.value = S.draftRef;
      S.draftRef = null;
    }
  }

  function setValue(id, v) {
    $(id).value = v === undefined || v === null ? "" : String(v);
  }

  function prefillFromRef() {
    const item = S.outbox.get($("f-ref").value);
    if (!item) return;
    const b = item.body || {};
    const to = Array.isArray(b.to) ? b.to : [];
    for (const box of document.querySelectorAll('#to-boxes input[name="to"]')) {
      box.checked = b.to === "*" ? box.value === "*" : to.includes(box.value);
    }
    setValue("f-status", item.status);
    setValue("f-precedence", item.precedence);
    if (composeType() !== "update") return;
    const tr = b.track || {};
    setValue("f-lat", tr.lat);
    setValue("f-lon", tr.lon);
    setValue("f-pos-err", tr.pos_err_m);
    setValue("f-alt", tr.alt_m);
    if (tr.alt_ref) setValue("f-alt-ref", tr.alt_ref);
    setValue("f-heading", tr.heading_deg);
    setValue("f-speed", tr.speed_mps);
    setValue("f-vrate", tr.vrate_mps);
    setValue("f-count", tr.count);
    if (tr.object) setValue("f-object", tr.object);
    if (tr.source) setValue("f-source", tr.source);
    setValue("f-confidence", tr.confidence);
    setValue("f-sensor", tr.sensor_id);
    const p = b.predicted;
    setValue("f-border", p ? p.border : "");
    setValue("f-crossing-min", p ? Math.max(0, Math.round((p.crossing_at - Date.now()) / 60000)) : "");
    setValue("f-probability", p ? p.probability : "");
    setValue("f-advice", b.advice || "");
  }

  function readNumber(id, path, errors) {
    const input = $(id);
    if (input.validity && input.validity.badInput) {
      errors.push([path, t("err_number")]);
      return undefined;
    }
    const raw = input.value.trim();
    if (raw === "") return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n)) {
      errors.push([path, t("err_number")]);
      return undefined;
    }
    return n;
  }

  /** The message to post, in wire codes (never translations), and any local errors. */
  function buildMessage() {
    const kind = composeType();
    const msg = { t: kind };
    const errors = [];
    if (kind === "update" || kind === "cancel") {
      const ref = $("f-ref").value;
      if (ref) msg.ref = ref;
      else errors.push(["ref", t("err_ref_required")]);
    }
    const chosen = [...document.querySelectorAll('#to-boxes input[name="to"]:checked')].map((b) => b.value);
    if (!chosen.length) errors.push(["to", t("err_to_required")]);
    msg.to = chosen.includes("*") ? "*" : chosen;
    msg.status = $("f-status").value;
    msg.precedence = $("f-precedence").value;
    if (kind === "warning" || kind === "update") {
      const track = {};
      const put = (key, value) => { if (value !== undefined) track[key] = value; };
      put("lat", readNumber("f-lat", "track.lat", errors));
      put("lon", readNumber("f-lon", "track.lon", errors));
      track.observed_at = Date.now();
      track.object = $("f-object").value;
      put("confidence", readNumber("f-confidence", "track.confidence", errors));
      track.source = $("f-source").value;
      put("pos_err_m", readNumber("f-pos-err", "track.pos_err_m", errors));
      const alt = readNumber("f-alt", "track.alt_m", errors);
      if (alt !== undefined) {
        track.alt_m = alt;
        track.alt_ref = $("f-alt-ref").value;
      }
      put("heading_deg", readNumber("f-heading", "track.heading_deg", errors));
      put("speed_mps", readNumber("f-speed", "track.speed_mps", errors));
      put("vrate_mps", readNumber("f-vrate", "track.vrate_mps", errors));
      put("count", readNumber("f-count", "track.count", errors));
      const sensor = $("f-sensor").value.trim();
      if (sensor) track.sensor_id = sensor;
      msg.track = track;

      const border = $("f-border").value.trim();
      const minutes = readNumber("f-crossing-min", "predicted.crossing_at", errors);
      const probability = readNumber("f-probability", "predicted.probability", errors);
      if (border || minutes !== undefined || probability !== undefined) {
        const predicted = {};
        if (border) predicted.border = border;
        if (minutes !== undefined) predicted.crossing_at = Date.now() + Math.round(minutes * 60000);
        if (probability !== undefined) predicted.probability = probability;
        msg.predicted = predicted;
      }
      const advice = $("f-advice").value;
      if (advice) msg.advice = advice;
    }
    if (kind === "cancel") msg.reason = $("f-reason").value;
    const text = $("f-text").value;
    if (text.trim() !== "" || kind === "text") {
      msg.text = text;
      msg.lang = $("f-lang").value;
    }
    return { msg, errors };
  }

  function clearFieldError(field) {
    field.classList.remove("invalid");
    const slot = field.querySelector(".error");
    if (slot) slot.textContent = "";
  }

  function clearErrors() {
    for (const f of $("compose").querySelectorAll(".field")) clearFieldError(f);
    $("err-form").textContent = "";
  }

  /** The visible field a server path names: "track.lat", "to[1]" → "to", else the form. */
  function fieldFor(path) {
    const form = $("compose");
    const candidates = [path, path.replace(/\[\d+\]$/, ""), path.split(".")[0]];
    for (const c of candidates) {
      if (!c) continue;
      const field = [...form.querySelectorAll(".field")].find((f) => f.dataset.field === c);
      if (field && !field.hidden && !field.closest("[hidden]")) return field;
    }
    return null;
  }

  function showError(path, detail, errorCode) {
    const field = fieldFor(path || "");
    const text = errorCode && errorCode !== "schema" ? `${detail} (${errorCode})` : detail;
    if (field) {
      field.classList.add("invalid");
      field.querySelector(".error").textContent = text;
      return field;
    }
    const prefix = path ? `${path}: ` : "";
    $("err-form").textContent = prefix + text;
    return null;
  }

  function focusField(field) {
    const input = field && field.querySelector("input, select, textarea");
    if (input) input.focus();
    else $("err-form").scrollIntoView({ block: "nearest" });
  }

  async function submitCompose(ev) {
    ev.preventDefault();
    clearErrors();
    $("compose-status").textContent = "";
    const { msg, errors } = buildMessage();
    if (errors.length) {
      const fields = errors.map(([path, text]) => showError(path, text));
      focusField(fields.find(Boolean));
      return;
    }
    const button = $("f-send");
    button.disabled = true;
    try {
      const r = await fetch("/api/messages", {
        method: "POST",
        headers: window.HotlineLogin.headers({ "Content-Type": "application/json" }),
        body: JSON.stringify(msg),
      });
      if (r.status === 401) window.HotlineLogin.expired();
      const data = await r.json().catch(() => null);
      if (r.status === 202 && data && data.id) {
        $("compose-status").textContent = t("sent_ok", { id: short(data.id) });
        $("f-text").value = "";
        clearDraft();
      } else if (data && typeof data.error === "string") {
        focusField(showError(String(data.field || ""), String(data.detail || ""), data.error));
      } else {
        showError("", t("err_http", { status: r.status }));
      }
    } catch (e) {
      showError("", t("err_network"));
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ start

  function renderAll(force) {
    renderStates();
    renderInbox(force);
    renderOutbox(force);
    renderLinks();
    drawChart();
    renderCheckpoint();
    renderAlarms();
  }

  async function setLanguage(lang, remember) {
    const cat = await getJson(`/console/i18n/${encodeURIComponent(lang)}.json`);
    S.cat = cat;
    S.lang = lang;
    document.documentElement.lang = lang;
    if (remember) store(LANG_KEY, lang);
    applyI18n(document);
    // the switch stays findable for an operator who does not read the configured language
    if (lang !== "en") $("lang-label").textContent = `${t("language")} / Language`;
    if (S.config) document.title = `${t("title")} — ${S.config.endpoint}`;
    renderAll(true);
  }

  function tick() {
    const now = Date.now();
    $("clock").textContent = hms(now);
    for (const e of document.querySelectorAll("[data-crossing-at]")) updateCountdown(e, now);
    for (const e of document.querySelectorAll("[data-since]")) {
      e.textContent = ago(Number(e.dataset.since));
    }
  }

  async function loadConfig() {
    for (let wait = 1000; ; wait = Math.min(wait * 2, 15000)) {
      try {
        return await getJson("/console/config.json");
      } catch (e) {
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  async function start() {
    tick();
    setInterval(tick, 1000);
    const cfg = await loadConfig();
    S.config = cfg;
    $("me").textContent = cfg.endpoint;

    const stored = recall(LANG_KEY);
    const lang = stored && cfg.languages.includes(stored) ? stored : cfg.language;
    const select = $("lang");
    select.replaceChildren(...cfg.languages.map((l) => h("option", { value: l, text: NATIVE[l] || l })));
    select.value = lang;
    select.addEventListener("change", () => {
      setLanguage(select.value, true).catch(() => { select.value = S.lang; });
    });
    await setLanguage(lang, false);

    const sound = $("sound");
    S.sound = recall(SOUND_KEY) === "on";
    sound.checked = S.sound;
    sound.addEventListener("change", () => {
      S.sound = sound.checked;
      store(SOUND_KEY, S.sound ? "on" : "off");
      if (S.sound) beep();
    });

    $("alarm-ack").addEventListener("click", goToAlarm);
    $("system-seen").addEventListener("click", () => {
      S.unseen = 0;
      renderAlarms();
    });

    setupViews();
    await window.HotlineLogin.ready();
    setupCompose();
    connect();
    pollLinks();
  }

  document.addEventListener("DOMContentLoaded", () => {
    start().catch((e) => {
      $("err-form").textContent = String(e);
    });
  });
})();
