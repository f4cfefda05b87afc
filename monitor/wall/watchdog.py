"""A few lines of browser code that keep a kiosk alive without anyone touching it.

NiceGUI reconnects by itself and reloads the page when the server no longer knows the client
(after a restart). This watchdog covers what that cannot see: when no message has arrived for a
few ticks and the server answers /healthz, the page is dead for some other reason, so reload it.
"""

from __future__ import annotations

STALL_TICKS = 5
MIN_STALL_S = 6.0


def watchdog_script(flush_interval_s: float) -> str:
    stall_ms = int(1000 * max(MIN_STALL_S, STALL_TICKS * flush_interval_s))
    return f"""<script>
(() => {{
  const stallMs = {stall_ms};
  let last = 0, hooked = null;  // armed by the first message, so a slow first load never reloads
  window.__labwall = {{ lastMessage: () => last }};
  setInterval(async () => {{
    if (window.socket && hooked !== window.socket) {{
      window.socket.onAny(() => {{ last = Date.now(); }});
      hooked = window.socket;
    }}
    if (!last || Date.now() - last < stallMs) return;
    try {{
      const r = await fetch("/healthz", {{ cache: "no-store" }});
      if (r.ok) {{ last = Date.now(); location.reload(); }}
    }} catch (e) {{ /* server or network still down: try again in a second */ }}
  }}, 1000);
}})();
</script>"""
