// nitro dev client: injected into HTML pages by `nitro dev` only. No external resources.
(() => {
  "use strict";
  const cfg = JSON.parse(document.currentScript.dataset.nitroDev);
  if (window.__nitroDev) return;
  const state = (window.__nitroDev = { sawError: false, socket: null, overlay: null });
  const status = (() => {
    try {
      return performance.getEntriesByType("navigation")[0]?.responseStatus ?? 0;
    } catch {
      return 0;
    }
  })();

  function showOverlay(html, locations) {
    hideOverlay();
    const host = document.createElement("nitro-dev-overlay");
    host.setAttribute("style", "position:fixed;inset:0;z-index:2147483647");
    const root = host.attachShadow({ mode: "open" });
    root.innerHTML =
      "<style>" +
      ".bg{position:fixed;inset:0;background:rgba(0,0,0,.66);overflow:auto;font:14px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}" +
      ".box{max-width:70rem;margin:3rem auto;background:#181a1f;color:#e6e6e6;border-top:4px solid #e5484d;border-radius:6px;padding:1rem 1.25rem;box-shadow:0 10px 40px rgba(0,0,0,.5)}" +
      "h1{font:600 16px system-ui,sans-serif;margin:0 0 .75rem;color:#ff8589}" +
      "p{font:13px system-ui,sans-serif;color:#a0a0a0;margin:.75rem 0 0}" +
      "pre{margin:0;white-space:pre-wrap;word-break:break-word}" +
      "button{float:right;background:none;border:0;color:#aaa;font-size:20px;cursor:pointer}" +
      "ul{margin:0 0 .75rem;padding:0;list-style:none}li{color:#7cc4ff}" +
      "</style>" +
      '<div class="bg"><div class="box" role="alert"><button title="close" aria-label="close">&times;</button>' +
      "<h1>Build failed</h1><ul></ul><pre></pre>" +
      "<p>The last good build is still serving. Fix the error and save: this page updates by itself.</p></div></div>";
    root.querySelector("pre").innerHTML = html;
    const list = root.querySelector("ul");
    for (const at of locations || []) {
      const item = document.createElement("li");
      item.textContent = at;
      list.appendChild(item);
    }
    root.querySelector("button").onclick = hideOverlay;
    document.documentElement.appendChild(host);
    state.overlay = host;
  }

  function hideOverlay() {
    if (state.overlay) state.overlay.remove();
    state.overlay = null;
  }

  // The server restarted (its token changed): reload once it answers again.
  function waitForServer(attempt) {
    if (attempt > 600) return;
    setTimeout(() => {
      fetch(location.href, { method: "HEAD", cache: "no-store" })
        .then((r) => (r.ok || r.status < 500 ? location.reload() : waitForServer(attempt + 1)))
        .catch(() => waitForServer(attempt + 1));
    }, 500);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}${cfg.path}?token=${encodeURIComponent(cfg.token)}`);
    state.socket = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg.type === "reload") {
        location.reload();
      } else if (msg.type === "error") {
        state.sawError = true;
        showOverlay(msg.html, msg.locations);
      } else if (msg.type === "ok") {
        hideOverlay();
        // A page that was itself an error (a route that did not build) is reloaded once fixed.
        if (state.sawError && status >= 500) location.reload();
        state.sawError = false;
      }
    };
    ws.onclose = () => {
      // Refused from the start (another Host, a stale page): stay quiet rather than loop.
      if (opened) waitForServer(0);
      else console.warn("nitro dev: the dev socket was refused; this page will not reload by itself");
    };
  }
  connect();
})();
