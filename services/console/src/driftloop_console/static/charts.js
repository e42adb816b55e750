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

  function driftChart() {
    var canvas = document.getElementById("drift-chart");
    var found = data("drift-data");
    if (!canvas || !found || !window.Chart) { return; }
    var thresholds = {};
    var positive = true;
    var datasets = found.columns.map(function (column, index) {
      var colour = PALETTE[index % PALETTE.length];
      column.thresholds.forEach(function (t) { if (t !== null) { thresholds[t] = true; } });
      column.scores.forEach(function (s) { if (s !== null && s <= 0) { positive = false; } });
      return {
        label: column.name + (column.drifted ? " (drifted)" : ""),
        data: column.scores,
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
      data: { labels: found.labels, datasets: datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false },
        scales: {
          y: {
            type: positive ? "logarithmic" : "linear",
            title: { display: true, text: "score" },
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
