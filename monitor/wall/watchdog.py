"""A few lines of browser code that keep a kiosk alive without anyone touching it.

NiceGUI reconnects by itself and reloads the page when the server no longer knows the client
(after a restart). This watchdog covers what that cannot see: when no message has arrived for a
few ticks and the server answers /healthz, the page is dead for some other reason, so reload it
(waiting twice as long after each reload in the last 10 minutes, up to 5 minutes).
And because the server sends an update every tick (the clock), a silence longer than the stale
limit means the screen is frozen: the page marks itself stale (html.lw-frozen) on its own.
"""

from __future__ import annotations

STALL_TICKS = 5
MIN_STALL_S = 6.0
MIN_FROZEN_S = 3.0


def watchdog_script(flush_interval_s: float, stale_after_intervals: float) -> str:
    stall_ms = int(1000 * max(MIN_STALL_S, STALL_TICKS * flush_interval_s))
    frozen_ms = int(1000 * max(MIN_FROZEN_S, stale_after_intervals * flush_interval_s) + 500)
    return f"""<script>
(() => {{
  const stallMs = {stall_ms}, frozenMs = {frozen_ms};
  // armed by the first tick (every tick sends an "update": the clock), so a slow first load never reloads
  let last = 0, hooked = null;
  let beat = 0;
  window.__labwall = {{ lastMessage: () => last }};
  setInterval(async () => {{
    // The wall runs without Tailwind's runtime (which leaves a performance mark per DOM update);
    // clearing marks anyway keeps any other library's from piling up on a wall that never reloads.
    if (++beat % 10 === 0) {{ performance.clearMarks(); performance.clearMeasures(); }}
    if (window.socket && hooked !== window.socket) {{
      window.socket.onAny((event) => {{ if (event === "update") last = Date.now(); }});
      hooked = window.socket;
    }}
    // a hung server or a dead link freezes the screen: say so, even though no message says it
    document.documentElement.classList.toggle("lw-frozen", !!last && Date.now() - last > frozenMs);
    // reloads in the last 10 minutes double the wait: a page that cannot recover never thrashes
    const recent = JSON.parse(sessionStorage.labwallReloads || "[]").filter((t) => Date.now() - t < 600000);
    if (!last || Date.now() - last < Math.min(300000, stallMs * 2 ** recent.length)) return;
    try {{
      const r = await fetch("/healthz", {{ cache: "no-store" }});
      if (r.ok) {{
        last = Date.now();
        sessionStorage.labwallReloads = JSON.stringify([...recent, last]);
        location.reload();
      }}
    }} catch (e) {{ /* server or network still down: try again in a second */ }}
  }}, 1000);
}})();
</script>"""
