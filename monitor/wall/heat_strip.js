// CPU heat strip: one cell per core, coloured by load. Values are integers 0..100, or -1 for unknown.
const STOPS = [
  [0, [22, 32, 44]],
  [25, [20, 84, 94]],
  [50, [31, 158, 137]],
  [75, [227, 179, 65]],
  [100, [255, 92, 87]],
];

function color(v) {
  if (v < 0) return "rgb(27, 36, 48)";
  const x = Math.max(0, Math.min(100, v));
  for (let i = 1; i < STOPS.length; i++) {
    const [x1, c1] = STOPS[i];
    if (x <= x1) {
      const [x0, c0] = STOPS[i - 1];
      const t = (x - x0) / (x1 - x0);
      const c = c0.map((a, k) => Math.round(a + (c1[k] - a) * t));
      return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
    }
  }
  return "rgb(255, 92, 87)";
}

export default {
  template: `<div class="heat"><div v-for="(v, i) in values" :key="i" class="heat-cell" :style="{ background: color(v) }"></div></div>`,
  props: { values: Array },
  methods: { color },
};
