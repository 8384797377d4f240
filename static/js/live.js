/*
 * Live linking panel: the end-user pairing page (mode "pair") and the console company page
 * (mode "console"). Speaks the WebSocket protocol of docs/design.md, "Events"; reconnects by itself with
 * backoff; every visible text comes from the translated catalog embedded in the page.
 */
(() => {
  "use strict";

  document.documentElement.classList.add("js");

  // --- small helpers that work without the live panel too ---------------------------------

  const $ = (id) => document.getElementById(id);

  for (const form of document.querySelectorAll("form[data-autosubmit]")) {
    const select = form.querySelector("select");
    if (select) select.addEventListener("change", () => form.submit());
  }

  const configNode = $("page-config");
  const config = configNode ? JSON.parse(configNode.textContent) : null;
  const T = config ? config.catalog : { ui: {} };
  const fmt = (text, vars = {}) =>
    String(text || "").replace(/\{(\w+)\}/g, (all, key) => (key in vars ? vars[key] : all));

  let announceTimer = null;
  function announce(text) {
    const node = $("announcer") || $("console-announcer");
    if (!node || !text) return;
    // Clear first so the same sentence twice is still read out.
    node.textContent = "";
    clearTimeout(announceTimer);
    announceTimer = setTimeout(() => { node.textContent = text; }, 60);
  }

  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_error) {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      let ok = false;
      try { ok = document.execCommand("copy"); } catch (_e) { ok = false; }
      area.remove();
      return ok;
    }
  }

  for (const button of document.querySelectorAll("[data-copy-target]")) {
    const label = button.textContent;
    button.addEventListener("click", async () => {
      const target = $(button.dataset.copyTarget);
      if (!target) return;
      const text = ("value" in target && target.tagName !== "OUTPUT" ? target.value : target.textContent).trim();
      const ok = await copyText(text);
      button.textContent = ok ? (T.ui.copied || "Copied") : label;
      announce(ok ? T.ui.copied : T.ui.copy_failed);
      if (!ok && target.select) target.select();
      setTimeout(() => { button.textContent = label; }, 2000);
    });
  }

  if (!config) return;

  // --- state ---------------------------------------------------------------------------

  const PAIRING = new Set(["connecting", "qr_ready", "code_ready"]);
  const LINKED = new Set(["connected", "authenticated", "reconnecting"]);
  // A request with no answer at all (not even an error) gives up after this long.
  const REQUEST_PATIENCE = 30000;
  const clockOffset = config.server_now * 1000 - Date.now();
  const now = () => Date.now() + clockOffset;
  const isPair = config.mode === "pair";

  const state = {
    status: config.snapshot.status,
    linkedPhone: config.snapshot.linked_phone,
    code: null, // {code, phone, expiresAt, total}
    qr: null, // {qr, image, expiresAt, total}
    pendingCode: false,
    pendingQr: false,
    errorKey: "",
  };

  function timed(expiresAt) {
    const at = Date.parse(expiresAt);
    if (Number.isNaN(at)) return null;
    return { expiresAt: at, total: Math.max(1000, at - now()) };
  }

  function setCode(data) {
    const t = timed(data.expires_at);
    state.code = t && { code: data.pairing_code, phone: data.phone_number, ...t };
    state.pendingCode = false;
  }

  function setQr(data) {
    const t = timed(data.expires_at);
    state.qr = t && data.image ? { qr: data.qr, image: data.image, ...t } : null;
    if (state.qr) state.pendingQr = false;
  }

  if (config.snapshot.pairing_code) setCode(config.snapshot.pairing_code);
  if (config.snapshot.qr) setQr(config.snapshot.qr);

  // --- errors --------------------------------------------------------------------------

  function errorInfo(code) {
    return T.errors[code] || T.errors.UNKNOWN;
  }

  function retryMinutes(retryAfter) {
    const seconds = Number(retryAfter);
    return seconds > 0 ? Math.max(1, Math.ceil(seconds / 60)) : 0;
  }

  // As people say it: minutes up to an hour and a half, then hours (same rule as texts.py).
  function waitText(minutes) {
    return minutes < 90 ? fmt(T.ui.wait_minutes, { n: minutes }) : fmt(T.ui.wait_hours, { n: Math.ceil(minutes / 60) });
  }

  // The same failure can arrive twice (the caller's answer and the group's event) and only one
  // of them may carry Retry-After: keep the wait time it gave for a little while.
  let lastRetry = { code: "", minutes: 0, at: 0 };

  function showError(code, detail, retryAfter) {
    const box = $("error-box");
    if (!box) return;
    const info = errorInfo(code);
    let minutes = retryMinutes(retryAfter);
    if (minutes) {
      lastRetry = { code, minutes, at: Date.now() };
    } else if (lastRetry.code === code && Date.now() - lastRetry.at < 15000) {
      minutes = lastRetry.minutes;
    }
    $("error-sentence").textContent = info.sentence;
    $("error-next").textContent = minutes && info.next_timed ? fmt(info.next_timed, { wait: waitText(minutes) }) : info.next;
    const details = $("error-details");
    details.hidden = !detail;
    $("error-detail").textContent = detail ? `${code}: ${detail}` : "";
    for (const button of box.querySelectorAll("[data-offer]")) {
      button.hidden = !isPair || button.dataset.offer !== info.offer;
    }
    box.hidden = false;
    box.dataset.code = code;
  }

  function clearError() {
    const box = $("error-box");
    if (box) box.hidden = true;
  }

  // --- rendering -----------------------------------------------------------------------

  const clock = (ms) => {
    const total = Math.max(0, Math.ceil(ms / 1000));
    return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
  };

  let lastStatus = state.status;

  function renderStatus() {
    const badge = $("status-badge");
    const label = T.status_labels[state.status] || state.status;
    badge.className = `badge badge--${state.status}`;
    badge.textContent = label;
    $("status-text").textContent = T.status_sentences[state.status] || "";
    $("status-box").dataset.status = state.status;
    const connected = state.status === "connected";
    $("connected-box").hidden = !connected;
    $("connected-phone").textContent = state.linkedPhone ? fmt(T.ui.connected_as, { phone: state.linkedPhone }) : "";
    // Linked (or finishing): nothing to link; the panel returns when the link is gone.
    if (isPair) $("link-panel").hidden = LINKED.has(state.status);
    const sandboxTool = $("sandbox-tool");
    if (sandboxTool) sandboxTool.hidden = LINKED.has(state.status);
    const factPhone = $("fact-phone");
    if (factPhone) factPhone.textContent = state.linkedPhone || "—";
    if (state.status !== lastStatus) {
      lastStatus = state.status;
      const sandboxResult = $("sandbox-result");
      if (sandboxResult) sandboxResult.textContent = "";
      announce(connected && state.linkedPhone
        ? `${label}. ${fmt(T.ui.connected_as, { phone: state.linkedPhone })}`
        : `${fmt(T.ui.status_now, { status: label })}. ${T.status_sentences[state.status] || ""}`);
    }
  }

  function renderCountdown(prefix, item, liveText, expiredText) {
    const box = $(`${prefix}-countdown`);
    if (!box) return false;
    const left = item ? item.expiresAt - now() : 0;
    const live = Boolean(item) && left > 0;
    box.hidden = !item;
    if (item) {
      $(`${prefix}-bar`).style.width = `${Math.max(0, Math.min(100, (left / item.total) * 100))}%`;
      $(`${prefix}-timer`).textContent = live ? fmt(liveText, { time: clock(left) }) : expiredText;
      box.classList.toggle("is-low", live && left < 20000);
    }
    return live;
  }

  function renderCode() {
    const box = $("code-box");
    if (!box) return;
    const getCode = $("get-code");
    if (state.pendingCode && !state.code) {
      box.hidden = false;
      box.classList.remove("is-expired");
      $("code-for").textContent = T.ui.waiting_code;
      $("code-value").textContent = "····-····";
      $("copy-code").hidden = true;
      $("code-countdown").hidden = true;
    } else if (state.code) {
      box.hidden = false;
      $("code-for").textContent = fmt(T.ui.code_for, { phone: state.code.phone });
      $("code-value").textContent = state.code.code;
      $("copy-code").hidden = false;
    } else {
      box.hidden = true;
    }
    const live = renderCountdown("code", state.code, T.ui.code_expires_in, T.ui.code_expired);
    box.classList.toggle("is-expired", Boolean(state.code) && !live);
    if (getCode) {
      getCode.disabled = state.pendingCode;
      getCode.setAttribute("aria-busy", String(state.pendingCode));
      getCode.textContent = state.code && !live ? T.ui.new_code : T.ui.get_code;
    }
    const simulate = $("simulate-code");
    if (simulate) simulate.disabled = !live;
  }

  function renderQr() {
    const image = $("qr-image");
    if (!image) return;
    const placeholder = $("qr-placeholder");
    const live = renderCountdown("qr", state.qr, T.ui.qr_expires_in, T.ui.qr_expired);
    if (state.qr) {
      if (image.getAttribute("src") !== state.qr.image) {
        image.src = state.qr.image;
        image.dataset.qr = state.qr.qr;
      }
      image.hidden = false;
      placeholder.hidden = true;
    } else {
      image.hidden = true;
      image.removeAttribute("src");
      placeholder.hidden = false;
      placeholder.textContent = state.pendingQr ? T.ui.waiting_qr : placeholder.dataset.idle || placeholder.textContent;
    }
    $("qr-box").classList.toggle("is-expired", Boolean(state.qr) && !live);
    const start = $("qr-start");
    if (start) {
      start.hidden = live || state.pendingQr;
      start.textContent = state.qr ? T.ui.new_qr : start.dataset.label;
    }
    const simulate = $("simulate-qr");
    if (simulate) simulate.disabled = !live;
    const consoleQr = $("console-qr");
    if (consoleQr) consoleQr.hidden = !state.qr;
  }

  function render() {
    renderStatus();
    renderCode();
    renderQr();
  }

  const placeholder = $("qr-placeholder");
  if (placeholder) placeholder.dataset.idle = placeholder.textContent;
  const qrStart = $("qr-start");
  if (qrStart) qrStart.dataset.label = qrStart.textContent;

  // --- socket --------------------------------------------------------------------------

  let socket = null;
  let failures = 0;
  let wasLost = false;
  let retryTimer = null;
  let noteTimer = null;
  let pingTimer = null;
  let stopped = false;
  const queue = new Map(); // type -> message, sent when the socket opens

  function socketNote(text) {
    const note = $("socket-note");
    if (!note) return;
    note.textContent = text || "";
    note.hidden = !text;
  }

  let patienceTimer = null;
  function waitForAnswer() {
    clearTimeout(patienceTimer);
    patienceTimer = setTimeout(() => {
      if (!state.pendingCode && !state.pendingQr) return;
      state.pendingCode = false;
      state.pendingQr = false;
      showError("TIMEOUT", "");
      render();
    }, REQUEST_PATIENCE);
  }

  function send(message) {
    if (message.type !== "ping") waitForAnswer();
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(message));
    } else {
      queue.set(message.type, message);
      socketNote(T.ui.socket_connecting);
      if (!socket || socket.readyState === WebSocket.CLOSED) reconnectNow();
    }
  }

  function connect() {
    if (stopped) return;
    clearTimeout(retryTimer);
    clearInterval(noteTimer);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}${config.ws_path}`);
    socket = ws;
    ws.addEventListener("open", () => {
      document.body.dataset.socket = "open";
      failures = 0;
      socketNote("");
      if (wasLost) announce(T.ui.socket_back);
      wasLost = false;
      for (const message of queue.values()) ws.send(JSON.stringify(message));
      queue.clear();
      clearInterval(pingTimer);
      pingTimer = setInterval(() => {
        if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"ping"}');
      }, 25000);
    });
    ws.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (_error) { return; }
      handle(message);
    });
    ws.addEventListener("close", () => {
      document.body.dataset.socket = "closed";
      clearInterval(pingTimer);
      if (socket !== ws) return;
      // An answer to a request sent on this socket is lost with it; the snapshot sent on
      // reconnect shows any code or QR that came of it.
      if (state.pendingCode || state.pendingQr) {
        state.pendingCode = false;
        state.pendingQr = false;
        render();
      }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    if (stopped) return;
    failures += 1;
    wasLost = true;
    // 1, 2, 4, 8, 16, 30 s, with jitter so a restarted server is not hit all at once.
    const delay = Math.min(30, 2 ** Math.min(failures - 1, 5)) * (0.8 + Math.random() * 0.4);
    const until = Date.now() + delay * 1000;
    const tick = () => socketNote(fmt(T.ui.socket_lost, { seconds: Math.max(1, Math.ceil((until - Date.now()) / 1000)) }));
    tick();
    clearInterval(noteTimer);
    noteTimer = setInterval(tick, 1000);
    retryTimer = setTimeout(connect, delay * 1000);
    if (isPair && failures >= 2) checkLinkStillValid();
  }

  function reconnectNow() {
    if (socket && (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING)) return;
    failures = Math.max(0, failures - 1);
    connect();
  }

  async function checkLinkStillValid() {
    // A refused socket looks like a network error to the browser; the page itself says whether
    // the link expired or was withdrawn while this tab was open.
    try {
      const response = await fetch(location.pathname, { method: "HEAD", cache: "no-store" });
      if (response.status === 404 || response.status === 410) {
        stopped = true;
        clearTimeout(retryTimer);
        clearInterval(noteTimer);
        socketNote("");
        state.code = null;
        state.qr = null;
        $("link-panel").hidden = true;
        render();
        showError("LINK_INVALID", "");
      }
    } catch (_error) { /* offline: keep retrying */ }
  }

  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) reconnectNow();
  });

  // --- server messages -----------------------------------------------------------------

  function handle(message) {
    switch (message.type) {
      case "status": {
        state.status = message.status;
        if ("linked_phone" in message) state.linkedPhone = message.linked_phone;
        if (!PAIRING.has(state.status)) {
          state.code = null;
          state.qr = null;
          state.pendingCode = false;
          state.pendingQr = false;
        }
        const key = message.error_code ? `${message.status}:${message.error_code}` : "";
        if (message.error_code && key !== state.errorKey) {
          showError(message.error_code, message.error, message.retry_after);
        } else if (!message.error_code && state.status !== "disconnected") {
          clearError();
        }
        state.errorKey = key;
        break;
      }
      case "qr":
        setQr(message);
        if (state.status === "disconnected") state.status = "qr_ready";
        break;
      case "pairing_code":
        setCode(message);
        clearError();
        announce(`${fmt(T.ui.code_for, { phone: message.phone_number })}: ${String(message.pairing_code).split("").join(" ")}`);
        break;
      case "connected":
        state.status = "connected";
        state.linkedPhone = message.phone_number || state.linkedPhone;
        state.code = null;
        state.qr = null;
        clearError();
        break;
      case "disconnected":
        state.status = state.status === "connected" || PAIRING.has(state.status) ? "disconnected" : state.status;
        state.code = null;
        state.qr = null;
        state.pendingCode = false;
        state.pendingQr = false;
        if (message.reason) {
          showError(message.reason, "");
          state.errorKey = `disconnected:${message.reason}`;
        }
        break;
      case "credentials_reset":
        state.status = "disconnected";
        state.linkedPhone = null;
        state.code = null;
        state.qr = null;
        showError("CREDENTIALS_RESET", "");
        state.errorKey = "disconnected:CREDENTIALS_RESET";
        break;
      case "error": {
        state.pendingCode = false;
        state.pendingQr = false;
        const details = message.details || {};
        showError(message.error_code, message.error, message.retry_after ?? details.retry_after);
        announce(`${errorInfo(message.error_code).sentence}`);
        break;
      }
      default:
        return; // pong and anything newer than this page
    }
    render();
  }

  // --- end-user controls ---------------------------------------------------------------

  function selectTab(tab, focus) {
    const tabs = [...document.querySelectorAll('[role="tab"]')];
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
    if (tab.id === "tab-qr") maybeStartQr();
  }

  function maybeStartQr() {
    const qrLive = state.qr && state.qr.expiresAt > now();
    if (qrLive || state.pendingQr || state.status === "connected") return;
    if (PAIRING.has(state.status)) return; // a window is open: its QR arrives by itself
    startQr();
  }

  function startQr() {
    state.pendingQr = true;
    state.qr = null;
    clearError();
    send({ type: "start" });
    render();
  }

  function wireTabs() {
    const tabs = [...document.querySelectorAll('[role="tab"]')];
    tabs.forEach((tab, index) => {
      tab.addEventListener("click", () => selectTab(tab, false));
      tab.addEventListener("keydown", (event) => {
        let next = null;
        if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
        else if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
        else if (event.key === "Home") next = tabs[0];
        else if (event.key === "End") next = tabs[tabs.length - 1];
        if (next) {
          event.preventDefault();
          selectTab(next, true);
        }
      });
    });
  }

  // Calling codes -> regions, for the "Country: ..." hint under the phone field.
  const CALLING = {
    1: "US", 7: "RU", 20: "EG", 27: "ZA", 30: "GR", 31: "NL", 32: "BE", 33: "FR", 34: "ES",
    36: "HU", 39: "IT", 40: "RO", 41: "CH", 43: "AT", 44: "GB", 45: "DK", 46: "SE", 47: "NO",
    48: "PL", 49: "DE", 51: "PE", 52: "MX", 53: "CU", 54: "AR", 55: "BR", 56: "CL", 57: "CO",
    58: "VE", 60: "MY", 61: "AU", 62: "ID", 63: "PH", 64: "NZ", 65: "SG", 66: "TH", 81: "JP",
    82: "KR", 84: "VN", 86: "CN", 90: "TR", 91: "IN", 92: "PK", 93: "AF", 94: "LK", 95: "MM",
    98: "IR", 212: "MA", 213: "DZ", 216: "TN", 234: "NG", 254: "KE", 351: "PT", 353: "IE",
    357: "CY", 358: "FI", 359: "BG", 370: "LT", 371: "LV", 372: "EE", 373: "MD", 374: "AM",
    375: "BY", 380: "UA", 381: "RS", 385: "HR", 420: "CZ", 421: "SK", 852: "HK", 880: "BD",
    886: "TW", 961: "LB", 962: "JO", 964: "IQ", 965: "KW", 966: "SA", 968: "OM", 971: "AE",
    972: "IL", 974: "QA", 992: "TJ", 993: "TM", 994: "AZ", 995: "GE", 996: "KG", 998: "UZ",
  };
  let regionNames = null;
  try { regionNames = new Intl.DisplayNames([config.lang], { type: "region" }); } catch (_e) { regionNames = null; }

  function countryHint(value) {
    const text = value.trim();
    const digits = text.replace(/\D/g, "");
    if (!digits) return { text: "", warn: false };
    if (!text.startsWith("+") && (digits.startsWith("0") || (digits.startsWith("8") && digits.length === 11))) {
      return { text: T.ui.phone_national, warn: true };
    }
    let region = null;
    for (const length of [3, 2, 1]) {
      const code = digits.slice(0, length);
      if (CALLING[code]) { region = CALLING[code]; break; }
    }
    if (region === "RU" && /^7[67]/.test(digits)) region = "KZ";
    if (!region) return { text: T.ui.phone_country_unknown, warn: true };
    let name = region;
    if (regionNames) {
      name = regionNames.of(region);
      if (region === "US") name = `${regionNames.of("US")} / ${regionNames.of("CA")}`;
    }
    return { text: fmt(T.ui.phone_country, { country: name }), warn: false };
  }

  function wirePhoneForm() {
    const form = $("code-form");
    const input = $("phone");
    const hint = $("phone-country");
    const update = () => {
      const { text, warn } = countryHint(input.value);
      hint.textContent = text;
      hint.classList.toggle("is-warning", warn);
    };
    input.addEventListener("input", update);
    update();
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const phone = input.value.trim();
      if (!phone) {
        hint.textContent = T.ui.phone_required;
        hint.classList.add("is-warning");
        input.focus();
        announce(T.ui.phone_required);
        return;
      }
      clearError();
      state.errorKey = "";
      state.code = state.code && state.code.expiresAt > now() ? state.code : null;
      state.pendingCode = true;
      send({ type: "request_pairing_code", phone_number: phone, replace_existing: false });
      render();
      announce(T.ui.waiting_code);
    });
  }

  function wireErrorActions() {
    const box = $("error-box");
    box.querySelector("[data-dismiss-error]").addEventListener("click", () => {
      box.hidden = true;
      const focusTarget = $("phone") || $("main");
      if (focusTarget) focusTarget.focus();
    });
    box.querySelector('[data-offer="qr"]').addEventListener("click", () => {
      box.hidden = true;
      selectTab($("tab-qr"), true);
    });
    box.querySelector('[data-offer="code"]').addEventListener("click", () => {
      box.hidden = true;
      selectTab($("tab-code"), true);
      $("phone").focus();
    });
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const field = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return field ? field.value : "";
  }

  function wireSandbox() {
    const result = $("sandbox-result");
    const simulate = async (body) => {
      result.textContent = T.ui.simulating;
      try {
        const response = await fetch(config.sandbox_phone_url, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
          credentials: "same-origin",
          body: JSON.stringify({ ...body, link_token: config.link_token }),
        });
        if (!response.ok) {
          let error = `HTTP ${response.status}`;
          try { error = (await response.json()).error || error; } catch (_e) { /* not JSON */ }
          result.textContent = fmt(T.ui.simulate_failed, { error });
        }
      } catch (error) {
        result.textContent = fmt(T.ui.simulate_failed, { error: String(error) });
      }
    };
    $("simulate-code").addEventListener("click", () => {
      if (state.code) simulate({ phone_number: state.code.phone, pairing_code: state.code.code });
    });
    $("simulate-qr").addEventListener("click", () => {
      const typed = $("phone").value.trim();
      if (state.qr) simulate({ phone_number: typed || "+79001234567", qr: state.qr.qr });
    });
  }

  if (isPair) {
    wireTabs();
    wirePhoneForm();
    wireErrorActions();
    if ($("sandbox-tool")) wireSandbox();
    $("qr-start").addEventListener("click", startQr);
  } else {
    $("error-box").querySelector("[data-dismiss-error]").addEventListener("click", clearError);
  }

  // The console lists the last error with the facts already; the end user needs it explained.
  if (isPair && config.snapshot.last_error_code && config.snapshot.status !== "connected") {
    showError(config.snapshot.last_error_code, config.snapshot.last_error);
    state.errorKey = `${config.snapshot.status}:${config.snapshot.last_error_code}`;
  }

  setInterval(() => {
    renderCode();
    renderQr();
  }, 1000);
  render();
  lastStatus = state.status;
  connect();
})();
