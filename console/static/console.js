// The console's own script: the dashboard's charts, and masking a full PAN typed in
// the search box before the form is sent (it must never reach a URL or a log).
"use strict";

(function () {
  function maskPan(value) {
    var digits = value.replace(/[\s-]/g, "");
    if (/^[0-9]{11,19}$/.test(digits)) {
      return digits.slice(0, 6) + "*".repeat(digits.length - 10) + digits.slice(-4);
    }
    return value;
  }

  function guardPanInputs() {
    document.querySelectorAll("input[data-mask-pan]").forEach(function (input) {
      input.addEventListener("change", function () { input.value = maskPan(input.value); });
      if (input.form) {
        input.form.addEventListener("submit", function () { input.value = maskPan(input.value); });
      }
    });
  }

  function chart(el, series, data, range) {
    var scales = { x: { time: true } };
    if (range) { scales.y = { range: range }; }
    var opts = {
      width: Math.max(320, el.clientWidth || 640),
      height: 180,
      scales: scales,
      series: [{}].concat(series),
      axes: [{}, { size: 50 }],
      legend: { show: true },
    };
    return new window.uPlot(opts, data, el);
  }

  function startDashboard(root) {
    var source = root.getAttribute("data-source");
    var every = parseInt(root.getAttribute("data-every-ms"), 10) || 2000;
    var charts = null;
    function draw(d) {
      var tps = [d.seconds, d.tps];
      var approval = [d.seconds, d.approval];
      var latency = [d.latency_at, d.p50, d.p95, d.p99];
      if (charts === null) {
        charts = [
          chart(document.getElementById("chart-tps"),
            [{ label: "requests/s", stroke: "#1f6feb", width: 2 }], tps),
          chart(document.getElementById("chart-approval"),
            [{ label: "approved %", stroke: "#1a7f37", width: 2, points: { show: true } }],
            approval, [0, 100]),
          chart(document.getElementById("chart-latency"), [
            { label: "p50 ms", stroke: "#1a7f37", width: 2, points: { show: true } },
            { label: "p95 ms", stroke: "#bf8700", width: 2, points: { show: true } },
            { label: "p99 ms", stroke: "#cf222e", width: 2, points: { show: true } },
          ], latency),
        ];
      } else {
        charts[0].setData(tps);
        charts[1].setData(approval);
        charts[2].setData(latency);
      }
      document.getElementById("total").textContent = d.total;
      document.getElementById("approved").textContent = d.approved;
      document.getElementById("declined").textContent = d.declined;
      root.setAttribute("data-loaded", "yes");
    }
    function tick() {
      fetch(source, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (r.status === 401) { window.location = "/login"; throw new Error("log in"); }
          return r.json();
        })
        .then(draw)
        .catch(function () { /* the next tick tries again */ })
        .finally(function () { window.setTimeout(tick, every); });
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    guardPanInputs();
    var root = document.getElementById("dashboard");
    if (root && window.uPlot) { startDashboard(root); }
  });
})();
