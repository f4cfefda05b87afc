// The wall's chart points, one call a tick for every chart: labwallCharts.push([[id, xs, ys, indices, maxPoints], ...]).
// A chart is redrawn (one Plotly.extendTraces for all its traces) once its held points would move
// its line by at least one device pixel, or after HOLD_TICKS ticks: a tick that would change nothing
// visible on the screen costs no Plotly redraw. Plotly is still what draws every chart.
window.labwallCharts = (() => {
  const HOLD_TICKS = 8;
  const held = new Map(); // element id -> {xs: {trace: [...]}, ys: {...}, maxPoints, ticks, count}
  const widths = new Map(); // element id -> device pixels (read once: a read after a redraw forces a layout)
  const stats = { ticks: 0, redraws: 0 };
  window.addEventListener("resize", () => widths.clear());

  function flush(id, h) {
    held.delete(id);
    const chart = getElement(id);
    if (!chart?.Plotly || !chart.$el?.data) {
      widths.delete(id); // a chart replaced or removed meanwhile: its points went with it
      return;
    }
    stats.redraws += 1;
    const indices = Object.keys(h.xs).map(Number);
    chart.Plotly.extendTraces(chart.$el, { x: indices.map((i) => h.xs[i]), y: indices.map((i) => h.ys[i]) },
      indices, h.maxPoints);
  }

  function width(id, el) {
    if (widths.has(id)) return widths.get(id);
    const w = el.clientWidth * window.devicePixelRatio;
    if (w > 0) widths.set(id, w); // not laid out yet (0): read again next tick
    return w;
  }

  function due(id, h) {
    const el = getHtmlElement(id);
    if (!el || h.ticks >= HOLD_TICKS) return true;
    const shown = el.data?.[0]?.x?.length ?? 0;
    const span = Math.max(1, Math.min(h.maxPoints, shown + h.count) - 1); // points across the chart's width
    return (h.count * width(id, el)) / span >= 1;
  }

  function push(updates) {
    for (const [id, xs, ys, indices, maxPoints] of updates) {
      let h = held.get(id);
      if (h && h.maxPoints !== maxPoints) {
        flush(id, h);
        h = undefined;
      }
      if (!h) {
        h = { xs: {}, ys: {}, maxPoints, ticks: 0, count: 0 };
        held.set(id, h);
      }
      indices.forEach((trace, k) => {
        (h.xs[trace] ??= []).push(...xs[k]);
        (h.ys[trace] ??= []).push(...ys[k]);
      });
      h.count = Math.max(...Object.values(h.xs).map((a) => a.length));
    }
    stats.ticks += 1;
    for (const h of held.values()) h.ticks += 1;
    const ready = [...held].filter(([id, h]) => due(id, h)); // every read before the first redraw
    for (const [id, h] of ready) flush(id, h);
  }

  return { push, stats };
})();
