/*
 * hotline console: the operator's login, before the console itself starts.
 *
 * GET /api/session tells whether this browser holds a live session; if not the
 * login view asks for the operator's name and password (POST /api/login). The
 * session's CSRF token is kept in memory only and sent as X-Hotline-CSRF on every
 * post the console makes (headers()); the cookie itself is HttpOnly. A 401 later
 * (the idle timeout passed) brings the login view back (expired()). Viewers get
 * body[data-role=viewer]: the compose form and acknowledgement forms are hidden.
 */
"use strict";

window.HotlineLogin = (function () {
  const LANG_KEY = "hotline.console.lang";
  let session = null;
  let cat = null;
  const waiting = [];
  const $ = (id) => document.getElementById(id);

  async function getJson(url) {
    const r = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    return [r.status, await r.json().catch(() => null)];
  }

  function t(key) {
    return (cat && cat.ui && typeof cat.ui[key] === "string") ? cat.ui[key] : key;
  }

  async function translate() {
    const [, cfg] = await getJson("/console/config.json");
    if (!cfg) return;
    $("login-endpoint").textContent = cfg.endpoint;
    let stored = null;
    try { stored = localStorage.getItem(LANG_KEY); } catch (e) { /* storage may be disabled */ }
    const lang = stored && cfg.languages.includes(stored) ? stored : cfg.language;
    const [, loaded] = await getJson(`/console/i18n/${encodeURIComponent(lang)}.json`);
    if (!loaded) return;
    cat = loaded;
    document.documentElement.lang = lang;
    for (const e of $("login").querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  }

  function show(reason) {
    document.body.dataset.login = "required";
    $("login").hidden = false;
    const error = $("login-error");
    error.dataset.i18n = reason;
    error.textContent = reason ? t(reason) : "";
    $("login-name").focus();
  }

  function accept(s) {
    session = s;
    document.body.dataset.login = "done";
    document.body.dataset.role = s.role;
    $("login").hidden = true;
    $("operator-name").textContent = s.operator;
    $("operator").hidden = false;
    while (waiting.length) waiting.shift()(s);
  }

  async function submit(event) {
    event.preventDefault();
    const button = $("login-submit");
    button.disabled = true;
    try {
      const r = await fetch("/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: $("login-name").value, password: $("login-password").value }),
      });
      const data = await r.json().catch(() => null);
      $("login-password").value = "";
      if (r.status === 200 && data && typeof data.csrf === "string") {
        accept(data);
      } else {
        show("login_failed");
        $("login-password").focus();
      }
    } finally {
      button.disabled = false;
    }
  }

  async function logout() {
    try {
      await fetch("/api/logout", { method: "POST", headers: headers({ "Content-Type": "application/json" }), body: "{}" });
    } finally {
      location.reload();
    }
  }

  function headers(extra) {
    const out = Object.assign({}, extra || {});
    if (session) out["X-Hotline-CSRF"] = session.csrf;
    return out;
  }

  async function begin() {
    $("login-form").addEventListener("submit", submit);
    $("logout").addEventListener("click", logout);
    const [status, data] = await getJson("/api/session");
    if (status === 200 && data && typeof data.csrf === "string") {
      accept(data);
      return;
    }
    await translate().catch(() => { /* the form works untranslated */ });
    show("");
  }

  function expired() {
    if (!session) return;
    session = null;
    translate().catch(() => { /* untranslated */ }).then(() => show("session_expired"));
  }

  document.addEventListener("DOMContentLoaded", () => {
    begin().catch((e) => { $("login-error").textContent = String(e); });
  });

  return {
    /** Resolves with the session once an operator is logged in. */
    ready() { return session ? Promise.resolve(session) : new Promise((r) => waiting.push(r)); },
    headers,
    expired,
  };
})();
