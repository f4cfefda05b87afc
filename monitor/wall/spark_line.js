// A host's sparkline: values are integers 0..100 (mean GPU utilisation), drawn as one SVG polyline.
export default {
  template: `<svg class="spark" viewBox="0 0 100 100" preserveAspectRatio="none">
    <polyline v-if="values.length > 1" :points="points()" fill="none" stroke="currentColor"
              stroke-width="1.6" vector-effect="non-scaling-stroke" />
  </svg>`,
  props: { values: Array },
  methods: {
    points() {
      const n = this.values.length - 1;
      return this.values.map((v, i) => `${((100 * i) / n).toFixed(1)},${(100 - v).toFixed(0)}`).join(" ");
    },
  },
};
