// Time series charts on uPlot (vendored: static/vendor/uplot.js, see docs/console.md).

import uPlot from "../vendor/uplot.js";
import { h } from "./dom.js";

export const PALETTE = ["#2f5fd0", "#d9480f", "#2b8a3e", "#ae3ec9", "#e67700", "#0c8599", "#c2255c", "#5c940d", "#868e96"];
const CHART_HEIGHT = 190;
const MIN_WIDTH = 260;

/**
 * A line chart: x in Unix seconds, series [{label, values, color?, dash?}], format(value) for the axis and legend.
 * Returns {element, destroy}; the chart follows its container's width.
 */
export function lineChart(title, x, series, format, { integer = false } = {}) {
  const holder = h("div", { class: "chart-plot" });
  const element = h("figure", { class: "chart" }, h("figcaption", null, title), holder);
  const options = {
    width: MIN_WIDTH,
    height: CHART_HEIGHT,
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [
      { stroke: "currentColor", grid: { stroke: "rgba(128,128,128,0.15)" }, ticks: { stroke: "rgba(128,128,128,0.3)" } },
      { stroke: "currentColor", grid: { stroke: "rgba(128,128,128,0.15)" }, ticks: { stroke: "rgba(128,128,128,0.3)" },
        size: 84, values: (u, values) => values.map((value) => format(value)),
        // Counts take whole steps only: no axis of 0, 0.5, 1 calls.
        incrs: integer ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 1e5, 1e6, 1e7] : undefined },
    ],
    series: [{ label: "time" }, ...series.map((item, index) => ({
      label: item.label,
      stroke: item.color || PALETTE[index % PALETTE.length],
      width: 1.5,
      dash: item.dash,
      points: { show: x.length < 3 },
      value: (u, value) => (value === null || value === undefined ? "–" : format(value)),
    }))],
  };
  const plot = new uPlot(options, [x, ...series.map((item) => item.values)], holder);
  const resize = new ResizeObserver(() => {
    const width = Math.max(MIN_WIDTH, Math.floor(holder.clientWidth));
    if (Math.abs(width - plot.width) > 1) plot.setSize({ width, height: CHART_HEIGHT });
  });
  resize.observe(holder);
  return { element, destroy() { resize.disconnect(); plot.destroy(); } };
}
