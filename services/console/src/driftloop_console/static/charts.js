// The console's charts (Chart.js 4): drift scores per column, metrics by step.
// Each reads its data from a <script type="application/json"> block of the page and marks
// its <canvas> data-ready="true" and data-series="N" once drawn.
(function () {
  "use strict";
  var PALETTE = ["#2a5bd7", "#d92d20", "#079455", "#dc6803", "#7a5af8", "#0e9384",
                 "#c11574", "#475467", "#ca8504", "#1570ef", "#6938ef", "#e04f16"];
  window.driftloopCharts = window.driftloopCharts || {};

  function data(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  function drawn(canvas, chart) {
    canvas.setAttribute("data-series", String(chart.data.datasets.length));
    canvas.setAttribute("data-ready", "true");
  }

  // Dashed horizontal lines at each distinct threshold: thresholds are not series.
  var thresholdLines = {
    id: "thresholdLines",
    afterDatasetsDraw: function (chart, args, options) {
      var values = options.values || [];
      var y = chart.scales.y;
      var area = chart.chartArea;
      var context = chart.ctx;
      context.save();
      context.setLineDash([6, 4]);
      context.strokeStyle = "#b42318";
      context.lineWidth = 1;
      values.forEach(function (value) {
        if (value <= 0 && y.type === "logarithmic") { return; }
        var position = y.getPixelForValue(value);
        if (position < area.top || position > area.bottom) { return; }
        context.beginPath();
        context.moveTo(area.left, position);
        context.lineTo(area.right, position);
        context.stroke();
      });
      context.restore();
    }
  };

  // A p-value of a large window can be 1e-90; a log axis over 90 decades draws nothing
  // readable (Chart.js gives up on it), so scores below FLOOR are drawn at FLOOR and
  // the tooltip tells the true value.
  var FLOOR = 1e-12;

  function driftChart() {
    var canvas = document.getElementById("drift-chart");
    var found = data("drift-data");
    if (!canvas || !found || !window.Chart) { return; }
    var thresholds = {};
    var positive = true;
    var lowest = Infinity;
    var highest = -Infinity;
    found.columns.forEach(function (column) {
      column.scores.concat(column.thresholds).forEach(function (s) {
        if (s === null) { return; }
        if (s <= 0) { positive = false; }
        lowest = Math.min(lowest, s);
        highest = Math.max(highest, s);
      });
    });
    var clamp = function (s) { return s === null || !positive ? s : Math.max(s, FLOOR); };
    var datasets = found.columns.map(function (column, index) {
      var colour = PALETTE[index % PALETTE.length];
      column.thresholds.forEach(function (t) { if (t !== null) { thresholds[t] = true; } });
      return {
        label: column.name + (column.drifted ? " (drifted)" : ""),
        data: column.scores.map(clamp),
        scores: column.scores,
        borderColor: colour,
        backgroundColor: colour,
        borderWidth: column.drifted ? 3 : 1.5,
        pointRadius: column.drifted_in.map(function (d) { return d ? 5 : 2; }),
        pointStyle: column.drifted_in.map(function (d) { return d ? "crossRot" : "circle"; }),
        spanGaps: false,
        tension: 0
      };
    });
    var chart = new window.Chart(canvas, {
      type: "line",
      // Each window by its version and end, in the viewer's time zone.
      data: { labels: found.windows.map(function (w) {
        return "v" + w.version + " · " + new Date(w.end).toLocaleString(undefined, {
          month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit"
        });
      }), datasets: datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false },
        scales: {
          y: {
            type: positive ? "logarithmic" : "linear",
            min: positive && isFinite(lowest)
              ? Math.pow(10, Math.floor(Math.log10(Math.max(lowest, FLOOR)))) : undefined,
            max: positive && isFinite(highest)
              ? Math.pow(10, Math.ceil(Math.log10(highest))) : undefined,
            title: { display: true, text: positive ? "score (log scale)" : "score" },
            ticks: { callback: function (value) {
              var number = Number(value);
              return number !== 0 && (Math.abs(number) < 0.001 || Math.abs(number) >= 1e4)
                ? number.toExponential(0) : String(number);
            } }
          },
          x: { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } }
        },
        plugins: {
          legend: { position: "bottom" },
          tooltip: { callbacks: { label: function (item) {
            var score = item.dataset.scores[item.dataIndex];
            return item.dataset.label + ": " + (score === null ? "none" : score.toPrecision(4));
          } } },
          thresholdLines: { values: Object.keys(thresholds).map(Number) }
        }
      },
      plugins: [thresholdLines]
    });
    window.driftloopCharts.drift = chart;
    drawn(canvas, chart);
  }

  function metricChart() {
    var canvas = document.getElementById("metric-chart");
    var found = data("metric-data");
    if (!canvas || !found || !window.Chart) { return; }
    var select = document.getElementById("metric-key");
    var chart = null;
    function draw(key) {
      var series = found.series[key] || [];
      var datasets = series.map(function (run, index) {
        var colour = PALETTE[index % PALETTE.length];
        return { label: run.run_id.slice(0, 8), data: run.points, borderColor: colour,
                 backgroundColor: colour, pointRadius: 3, showLine: true, tension: 0 };
      });
      if (chart) { chart.destroy(); }
      chart = new window.Chart(canvas, {
        type: "scatter",
        data: { datasets: datasets },
        options: {
          animation: false,
          maintainAspectRatio: false,
          scales: { x: { title: { display: true, text: "step" } },
                    y: { title: { display: true, text: key } } },
          plugins: { legend: { position: "bottom" } }
        }
      });
      window.driftloopCharts.metric = chart;
      canvas.setAttribute("data-metric", key);
      drawn(canvas, chart);
    }
    if (select) { select.addEventListener("change", function () { draw(select.value); }); }
    if (found.keys.length) { draw(select ? select.value : found.keys[0]); }
  }

  document.addEventListener("DOMContentLoaded", function () { driftChart(); metricChart(); });
})();
