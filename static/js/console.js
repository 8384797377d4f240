/*
 * Console company list: keeps the status badges live by polling the same rows, re-rendered by
 * the server (one light request every few seconds for the whole page, instead of one socket per
 * company). Pauses while the tab is hidden; backs off when the server does not answer.
 */
(() => {
  "use strict";

  document.documentElement.classList.add("js");
  for (const form of document.querySelectorAll("form[data-autosubmit]")) {
    const select = form.querySelector("select");
    if (select) select.addEventListener("change", () => form.submit());
  }

  const table = document.querySelector("table[data-rows-url]");
  const body = document.getElementById("company-rows");
  const announcer = document.getElementById("console-announcer");
  if (!table || !body) return;

  const INTERVAL = 3000;
  let delay = INTERVAL;
  let timer = null;
  let lastHtml = body.innerHTML.trim();

  const statuses = (root) => {
    const map = new Map();
    for (const row of root.querySelectorAll("tr[data-slug]")) {
      map.set(row.dataset.slug, { status: row.dataset.status, name: row.dataset.name, label: row.dataset.label });
    }
    return map;
  };

  async function poll() {
    timer = null;
    if (document.hidden) return;
    try {
      const response = await fetch(table.dataset.rowsUrl, {
        cache: "no-store",
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
      });
      if (response.redirected || response.status === 302 || response.status === 403) {
        location.reload(); // logged out meanwhile: show the login page
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const html = (await response.text()).trim();
      if (html !== lastHtml) {
        const before = statuses(body);
        body.innerHTML = html;
        lastHtml = html;
        const changes = [];
        for (const [slug, now] of statuses(body)) {
          const old = before.get(slug);
          if (old && old.status !== now.status) {
            changes.push(`${now.name}: ${now.label}`);
            const row = body.querySelector(`tr[data-slug="${CSS.escape(slug)}"]`);
            if (row) row.classList.add("is-changed");
          }
        }
        if (changes.length && announcer) announcer.textContent = changes.join(". ");
      }
      delay = INTERVAL;
    } catch (_error) {
      delay = Math.min(delay * 2, 60000);
    }
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(poll, delay);
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      delay = INTERVAL;
      clearTimeout(timer);
      poll();
    }
  });
  schedule();
})();
