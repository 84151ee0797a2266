/* The dashboard's filters, tiles, tables and charts, computed in the page from the embedded
 * data (pipelines/report/cube.py): every figure is a sum over the rows the filters keep, and a
 * ratio is the summed numerator over the summed denominator, as the marts define them. Charts
 * are drawn by Chart.js (inlined before this script). No network: the page works from disk. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var C = D.cube;
  var DAY_MS = 86400000;
  var NA = "\u2013";
  var COLORS = {answered: "#009E73", no_answer: "#E69F00", busy: "#D55E00", failed: "#CC79A7",
    other: "#999999"};
  var OUTCOME_LABELS = {answered: "Answered", no_answer: "No answer", busy: "Busy",
    failed: "Failed", other: "Other"};
  var BLUE = "#0072B2", ORANGE = "#E69F00", VERMILION = "#D55E00", GREEN = "#009E73";
  var charts = {};

  /* ---- days ---- */
  function parseDay(text) { var p = text.split("-"); return Date.UTC(+p[0], +p[1] - 1, +p[2]); }
  function isoDay(ms) { return new Date(ms).toISOString().slice(0, 10); }
  var WINDOW0 = parseDay(C.window_start);
  function dayIndex(text) { return Math.round((parseDay(text) - WINDOW0) / DAY_MS); }
  function dayText(index) { return isoDay(WINDOW0 + index * DAY_MS); }
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
    "Dec"];
  var WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  function weekday(index) { return (new Date(WINDOW0 + index * DAY_MS).getUTCDay() + 6) % 7; }
  function dayLabel(index, long) {
    var d = new Date(WINDOW0 + index * DAY_MS);
    var text = d.getUTCDate() + " " + MONTHS[d.getUTCMonth()];
    if (long) { text = WEEKDAYS[weekday(index)] + " " + text + " " + d.getUTCFullYear(); }
    return text;
  }
  function rangeLabel(a, b) {
    return a === b ? dayLabel(a, true) : dayLabel(a, false) + " " +
      new Date(WINDOW0 + a * DAY_MS).getUTCFullYear() + " \u2013 " + dayLabel(b, false) + " " +
      new Date(WINDOW0 + b * DAY_MS).getUTCFullYear();
  }

  /* ---- formats: one per kind, one per column ---- */
  function count(v) { return v === null || v === undefined ? NA : Math.round(v).toLocaleString("en-US"); }
  function percent(v) { return v === null || v === undefined ? NA : (100 * v).toFixed(1) + "%"; }
  function money(v) {
    return v === null || v === undefined ? NA : v.toLocaleString("en-US",
      {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function duration(seconds) {  // as fmt.duration: 45s, 4m 04s, 2h 05m, 3d 04h
    if (seconds === null || seconds === undefined) { return NA; }
    var total = Math.round(seconds);
    if (total >= 2 * 86400) {
      return Math.floor(total / 86400).toLocaleString("en-US") + "d " +
        pad(Math.floor((total % 86400) / 3600)) + "h";
    }
    var h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    if (h) { return h.toLocaleString("en-US") + "h " + pad(m) + "m"; }
    if (m) { return m + "m " + pad(s) + "s"; }
    return s + "s";
  }
  // A table column of durations has one format: m:ss, or h:mm:ss when any value reaches an hour.
  function clockFormat(values) {
    var long = values.some(function (v) { return v !== null && v >= 3599.5; });
    return function (v) {
      if (v === null || v === undefined) { return NA; }
      var t = Math.round(v), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60);
      return long ? h + ":" + pad(m) + ":" + pad(t % 60) : Math.floor(t / 60) + ":" + pad(t % 60);
    };
  }
  function value(kind, v) {
    if (kind === "ratio") { return percent(v); }
    if (kind === "seconds") { return duration(v); }
    if (kind === "money") { return money(v); }
    return count(v);
  }
  function ratio(n, d) { return d ? n / d : null; }

  /* ---- the rows the filters keep ---- */
  function table(name) {
    var t = C[name];
    if (!t) { return null; }
    if (!t.at) { t.at = {}; t.columns.forEach(function (c, i) { t.at[c] = i; }); }
    return t;
  }
  var state = {from: dayIndex(D.period.start), to: dayIndex(D.period.end), account: -1,
    queue: -2, agent: -1, direction: -1, day: null};
  // queue: -2 every call, -1 calls through no queue, >= 0 a queue.
  function keep(t, row, range, skip) {
    var at = t.at, d = row[at.day];
    if (d < range[0] || d > range[1]) { return false; }
    if (state.account >= 0 && "account" in at && row[at.account] !== state.account) { return false; }
    if (!skip.queue && state.queue !== -2 && "queue" in at && row[at.queue] !== state.queue) { return false; }
    if (!skip.agent && state.agent >= 0 && "agent" in at && row[at.agent] !== state.agent) { return false; }
    if (!skip.direction && state.direction >= 0 && "direction" in at &&
        row[at.direction] !== state.direction) { return false; }
    return true;
  }
  function rows(name, range, skip) {
    var t = table(name);
    if (!t) { return []; }
    return t.rows.filter(function (row) { return keep(t, row, range, skip || {}); });
  }
  function sums(name, kept) {
    var t = table(name), out = {};
    if (!t) { return out; }
    t.columns.forEach(function (c, i) {
      if (c.indexOf(".") > 0) {
        var total = 0;
        kept.forEach(function (row) { total += row[i]; });
        out[c] = total;
      }
    });
    return out;
  }
  function metricValue(m, s) {
    var n = s[m.name + ".n"];
    if (n === undefined) { return undefined; }
    return m.denominator ? ratio(n, s[m.name + ".d"]) : n;
  }

  /* ---- what the filters make of the data ---- */
  function chosenAccounts() {
    return state.account >= 0 ? [C.accounts[state.account]] : C.accounts;
  }
  // Compared only with a previous range the data covers as fully as the chosen one: every
  // account shown has calls from before it starts (an account's first day may be partial).
  // Fewer than 7 days are compared with the same weekdays a week before (a Monday with the
  // Sunday before it is not like with like); longer ranges with as many days just before.
  function previousRange() {
    var len = state.to - state.from + 1, shift = len < 7 ? 7 : len;
    var start = state.from - shift, end = start + len - 1;
    if (start < 0) { return {range: null, why: "the days to compare with are before the " +
      "data this page holds"}; }
    var late = chosenAccounts().filter(function (a) {
      var first = C.first_days[a];
      return first === undefined || dayIndex(first) >= start;
    });
    if (late.length) {
      var first = late.map(function (a) { return C.first_days[a]; }).filter(Boolean).sort().pop();
      return {range: null, why: first ? "the data starts on " + first + ": the days to compare " +
        "with (" + rangeLabel(start, end) + ") are not fully covered" :
        "no calls before this period"};
    }
    return {range: [start, end], why: "", label: len < 7 ?
      (len === 1 ? "the same day a week before" : "the same days a week before") :
      "the " + len + " days before"};
  }
  function skipFor(group) {
    // What each group of figures cannot be split by (shown as such, never guessed).
    if (group === "callbacks") { return {agent: true}; }
    return {};
  }
  function unsplit(group) {
    if (group === "callbacks" && state.agent >= 0) {
      return "a missed call has no agent: not split by agent";
    }
    if (group === "callbacks" && state.direction >= 0 && C.directions[state.direction] !== "inbound") {
      return "missed calls are inbound";
    }
    if (group === "queue" && state.agent >= 0) {
      return "per queue: not split by agent (an abandoned call has none); see Per agent";
    }
    if (group === "queue" && state.direction >= 0 && C.directions[state.direction] !== "inbound") {
      return "queues take inbound calls";
    }
    if (group === "queue" && state.queue === -1) { return "calls through no queue"; }
    return "";
  }
  function groupSums(group, range) {
    var name = group === "calls" ? "calls" : group === "callbacks" ? "callbacks" : "queue";
    return sums(name, rows(name, range, skipFor(group)));
  }
  function details(template, all) {
    return template.replace(/\{(\w+)\.(numerator|denominator):,\.0f\}/g, function (_, name, part) {
      var v = all[name + (part === "numerator" ? ".n" : ".d")];
      return v === undefined ? "?" : count(v);
    }).replace("{sl}", C.sl_seconds === null ? "the threshold" : C.sl_seconds + " s")
      .replace("{cost_per_minute}", (function () {
        var cost = all["cost.n"], minutes = all["outbound_minutes.n"];
        return minutes ? (cost / minutes).toFixed(4) : "n/a";
      })());
  }
  function change(m, now, before) {
    if (now === null || before === null || now === undefined || before === undefined) {
      return ["no change to show", "flat"];
    }
    var c, text;
    if (m.kind === "ratio") { c = now - before; text = (100 * c >= 0 ? "+" : "") + (100 * c).toFixed(1) + " pp"; }
    else {
      if (before === 0) { return ["no change to show", "flat"]; }
      c = (now - before) / before; text = (c >= 0 ? "+" : "") + (100 * c).toFixed(1) + "%";
    }
    if (Math.abs(c) < 0.0005) { return ["\u25ac " + text.replace("+", ""), "flat"]; }
    var tone = m.better === null ? "flat" : ((c > 0) === m.better ? "good" : "bad");
    return [(c > 0 ? "\u25b2 " : "\u25bc ") + text, tone];
  }
  function queueExtras(range) {
    var kept = rows("queue", range), t = table("queue"), longest = null;
    if (t) { kept.forEach(function (r) { longest = Math.max(longest || 0, r[t.at.longest_wait]); }); }
    return {longest: longest, rows: kept.length};
  }

  function renderTiles() {
    var range = [state.from, state.to], prev = previousRange();
    var all = {}, before = {};
    ["calls", "callbacks", "queue"].forEach(function (g) {
      Object.assign(all, groupSums(g, range));
      if (prev.range) { Object.assign(before, groupSums(g, prev.range)); }
    });
    document.querySelectorAll("[data-tiles]").forEach(function (box) {
      box.textContent = "";
      D.tiles.filter(function (m) { return m.section === box.dataset.tiles; }).forEach(function (m) {
        var el = document.createElement("div"), blocked = unsplit(m.group);
        el.className = "tile";
        el.dataset.kpi = m.name;
        var longest = m.name === "queue_longest_wait";
        var now = blocked ? null : longest ? queueExtras(range).longest : metricValue(m, all);
        if (now === undefined || (longest && !table("queue"))) { return; }
        var was = blocked || !prev.range ? null : metricValue(m, before);
        var shown = m.name === "queue_longest_wait" ? (blocked ? null : queueExtras(range).longest) : now;
        var was2 = m.name === "queue_longest_wait" ? null : was;
        el.dataset.value = shown === null ? "" : String(shown);
        el.dataset.previous = was2 === null || was2 === undefined ? "" : String(was2);
        var ch = m.name === "queue_longest_wait" ? ["the longest of the period", "flat"] :
          blocked ? [blocked, "flat"] :
          prev.range ? change(m, now, was) : ["not compared", "flat"];
        var previous = m.name === "queue_longest_wait" ? "" : blocked ? "" :
          prev.range ? prev.label + ": " + value(m.kind, was) :
          "";
        el.innerHTML = '<div class="tile-label"></div><div class="tile-value"></div>' +
          '<div class="tile-change"></div><div class="tile-previous"></div>' +
          '<div class="tile-detail"></div>';
        el.children[0].textContent = m.label;
        el.children[1].textContent = value(m.kind, shown);
        el.children[2].textContent = ch[0];
        el.children[2].className = "tile-change " + ch[1];
        el.children[3].textContent = previous;
        el.children[4].textContent = blocked ? "" : details(m.detail || "", all);
        box.appendChild(el);
      });
    });
    var note = document.getElementById("comparison-note");
    note.textContent = prev.range ?
      "Changes compare with " + prev.label + " (" +
      rangeLabel(prev.range[0], prev.range[1]) + "), with the same filters: ratios in " +
      "percentage points (pp), the rest in percent." :
      "Not compared: " + prev.why + " (a partly covered period is not like with like).";
  }

  /* ---- buckets: days, or weeks over long ranges (readable over six months) ---- */
  function buckets(range) {
    var days = range[1] - range[0] + 1, out = [];
    if (days <= 62) {
      for (var d = range[0]; d <= range[1]; d++) { out.push({from: d, to: d, label: dayLabel(d, days <= 14)}); }
      return {unit: "day", list: out};
    }
    var start = range[0] - weekday(range[0]);  // weeks from Monday
    for (var w = start; w <= range[1]; w += 7) {
      var a = Math.max(w, range[0]), b = Math.min(w + 6, range[1]);
      out.push({from: a, to: b, label: "wk " + dayLabel(w, false)});
    }
    return {unit: "week", list: out};
  }
  function bucketOf(b, day) {
    if (b.unit === "day") { return day - b.list[0].from; }
    for (var i = 0; i < b.list.length; i++) { if (day <= b.list[i].to) { return i; } }
    return -1;
  }

  /* ---- charts ---- */
  Chart.defaults.font.family = D.font;
  Chart.defaults.color = "#1f2933";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.legend.labels.boxWidth = 12;
  function draw(key, config) {
    var box = document.querySelector('[data-chart-box="' + key + '"]');
    if (charts[key]) { charts[key].destroy(); delete charts[key]; }
    box.textContent = "";
    if (typeof config === "string") {
      var empty = document.createElement("div");
      empty.className = "empty"; empty.dataset.empty = key; empty.textContent = config;
      box.appendChild(empty);
      return;
    }
    var holder = document.createElement("div");
    holder.className = "chart"; holder.style.height = (config.height || 320) + "px";
    var canvas = document.createElement("canvas");
    canvas.id = "chart-" + key;
    holder.appendChild(canvas); box.appendChild(holder);
    charts[key] = new Chart(canvas, config);
  }
  function missing(section) { return D.missing[section]; }
  function noCalls() { return "No calls in this period" + (filtered() ? " with these filters." : "."); }
  function filtered() {
    return state.account >= 0 || state.queue !== -2 || state.agent >= 0 || state.direction >= 0;
  }

  function renderDaily() {
    if (missing("daily")) { return draw("daily", missing("daily")); }
    var range = [state.from, state.to], b = buckets(range), t = table("calls");
    var kept = rows("calls", range);
    if (!kept.length) { return draw("daily", noCalls()); }
    var datasets = C.outcomes.map(function (o) {
      var data = b.list.map(function () { return 0; }), col = t.at["outcome." + o];
      kept.forEach(function (r) { data[bucketOf(b, r[t.at.day])] += r[col]; });
      return {label: OUTCOME_LABELS[o], data: data, backgroundColor: COLORS[o], stack: "calls"};
    }).filter(function (ds) { return ds.data.some(function (v) { return v > 0; }); });
    document.querySelector('[data-sub="daily"]').textContent = "Calls started each " + b.unit +
      " (" + D.timezone + ") by outcome. Answered: a leg connected and talked.";
    draw("daily", {type: "bar", data: {labels: b.list.map(function (x) { return x.label; }), datasets: datasets},
      height: 320, options: {scales: {x: {stacked: true, grid: {display: false}},
        y: {stacked: true, beginAtZero: true, title: {display: true, text: "Calls"}}},
        plugins: {legend: {position: "top", align: "start"}}}});
  }

  function renderHeatmap() {
    var box = document.querySelector('[data-chart-box="heatmap"]');
    box.textContent = "";
    if (missing("heatmap")) { return draw("heatmap", missing("heatmap")); }
    var range = [state.from, state.to], t = table("heat"), kept = rows("heat", range);
    if (!kept.length) { return draw("heatmap", noCalls()); }
    var grid = [], max = 0, days = [0, 0, 0, 0, 0, 0, 0];
    for (var w = 0; w < 7; w++) { grid.push(new Array(24).fill(0)); }
    // Averaged over the days of each weekday the range and the data share (a range starting
    // before the data does not dilute them).
    var first = Math.min.apply(null, chosenAccounts().map(function (a) {
      return C.first_days[a] ? dayIndex(C.first_days[a]) : Infinity; }));
    for (var d = Math.max(range[0], first); d <= Math.min(range[1], D.last_day_index); d++) { days[weekday(d)] += 1; }
    kept.forEach(function (r) { grid[weekday(r[t.at.day])][r[t.at.hour]] += r[t.at.calls]; });
    var html = '<table class="heat" data-heatmap><thead><tr><th></th>';
    for (var h = 0; h < 24; h++) { html += "<th>" + (h % 3 === 0 ? pad(h) : "") + "</th>"; }
    html += "</tr></thead><tbody>";
    grid.forEach(function (row, i) { row.forEach(function (v) { if (days[i]) { max = Math.max(max, v / days[i]); } }); });
    grid.forEach(function (row, i) {
      html += "<tr><th>" + WEEKDAYS[i] + "</th>";
      row.forEach(function (v, hour) {
        var avg = days[i] ? v / days[i] : null, x = avg === null || !max ? 0 : avg / max;
        var bg = avg === null ? "#ffffff" : "rgba(8, 48, 107, " + (0.04 + 0.9 * x).toFixed(3) + ")";
        html += '<td data-cell="' + i + "," + hour + '" data-avg="' + (avg === null ? "" : avg.toFixed(2)) +
          '" style="background:' + bg + ";color:" + (x > 0.55 ? "#fff" : "#1f2933") + '" title="' +
          WEEKDAYS[i] + " " + pad(hour) + ":00\u2013" + pad(hour) + ":59: " +
          (avg === null ? "no such day" : avg.toFixed(1) + " calls on average, " + v + " in " + days[i] + " days") +
          '">' + (avg === null || avg < 0.05 ? "" : avg >= 10 ? Math.round(avg) : avg.toFixed(1)) + "</td>";
      });
      html += "</tr>";
    });
    box.innerHTML = html + "</tbody></table>";
  }

  function renderTraffic() {
    var sub = document.querySelector('[data-sub="traffic"]');
    if (missing("traffic")) { return draw("traffic", missing("traffic")); }
    if (state.queue !== -2 || state.agent >= 0 || state.direction >= 0) {
      return draw("traffic", "Carried traffic is measured per account and hour " +
        "(agg_traffic_hourly): it is not split by queue, agent or direction. Clear those filters to see it.");
    }
    var range = [state.from, state.to], t = table("traffic"), kept = rows("traffic", range);
    var hours = {}, order = [];
    kept.forEach(function (r) {
      var e = r[t.at.epoch], h = hours[e];
      if (!h) { h = hours[e] = {epoch: e, day: r[t.at.day], local: r[t.at.local], holding: 0, attempts: 0, peak: 0}; order.push(h); }
      h.holding += r[t.at.holding]; h.attempts += r[t.at.attempts];
      h.peak = Math.max(h.peak, r[t.at.peak]);  // one account's peak: the mart's
    });
    if (state.account < 0 && C.peaks_all) {  // the accounts together: counted again
      order.forEach(function (h) { var p = C.peaks_all[String(h.epoch)]; if (p !== undefined) { h.peak = p; } });
    }
    if (!order.some(function (h) { return h.holding > 0; })) { return draw("traffic", noCalls()); }
    order.sort(function (a, b) { return a.epoch - b.epoch; });
    // each day's busy hour: the hour with the most holding time (summed over the accounts)
    var busy = {};
    order.forEach(function (h) { if (h.holding > 0 && (!busy[h.day] || h.holding > busy[h.day].holding)) { busy[h.day] = h; } });
    var days = range[1] - range[0] + 1;
    if (days <= 14) {
      sub.textContent = "Erlangs = seconds the legs held a channel (ringing and talk) in the hour / 3600 " +
        "(ITU-T E.600), per hour (" + D.timezone + "). Diamonds mark each day's busy hour. " + D.busy_hour_summary;
      draw("traffic", {type: "line", height: 320, data: {labels: order.map(function (h) { return h.local.replace("T", " "); }),
        datasets: [
          {label: "Carried traffic (Erlangs)", data: order.map(function (h) { return +(h.holding / 3600).toFixed(4); }),
            borderColor: BLUE, backgroundColor: "rgba(0,114,178,0.12)", fill: true, pointRadius: 0, borderWidth: 1.5, tension: 0},
          {label: "Busy hour of the day", data: order.map(function (h) { return busy[h.day] === h ? +(h.holding / 3600).toFixed(4) : null; }),
            showLine: false, pointStyle: "rectRot", pointRadius: 6, borderColor: "#fff", backgroundColor: VERMILION}]},
        options: {interaction: {mode: "index", intersect: false},
          plugins: {tooltip: {callbacks: {afterBody: function (items) { var h = order[items[0].dataIndex];
            return h.attempts + " calls started \u00b7 at most " + h.peak + " at once"; }}}},
          scales: {x: {ticks: {maxTicksLimit: 14, autoSkip: true}, grid: {display: false}},
            y: {beginAtZero: true, title: {display: true, text: "Erlangs"}}}}});
      return;
    }
    // Long ranges: hours would be a solid comb; per day (or week) the busy hour's traffic and
    // the average over the whole day.
    var b = buckets(range), top = b.list.map(function () { return 0; }), total = b.list.map(function () { return 0; });
    var peak = b.list.map(function () { return 0; });
    order.forEach(function (h) {
      var i = bucketOf(b, h.day); if (i < 0) { return; }
      top[i] = Math.max(top[i], h.holding / 3600); total[i] += h.holding; peak[i] = Math.max(peak[i], h.peak);
    });
    sub.textContent = "Per " + b.unit + ": the busiest hour's carried traffic (Erlangs, ITU-T E.600: holding seconds " +
      "in the hour / 3600) and the average over the " + b.unit + "'s hours; the most calls at once in the tooltip. " + D.busy_hour_summary;
    draw("traffic", {type: "bar", height: 320, data: {labels: b.list.map(function (x) { return x.label; }), datasets: [
      {type: "bar", label: "Busiest hour (Erlangs)", data: top.map(function (v) { return +v.toFixed(3); }), backgroundColor: BLUE},
      {type: "line", label: "Average over the " + b.unit + " (Erlangs)", data: total.map(function (v, i) {
        var x = b.list[i]; return +(v / 3600 / (24 * (x.to - x.from + 1))).toFixed(4); }),
        borderColor: VERMILION, backgroundColor: VERMILION, pointRadius: 2}]},
      options: {plugins: {tooltip: {callbacks: {afterBody: function (items) { return "at most " + peak[items[0].dataIndex] + " calls at once"; }}}},
        scales: {x: {grid: {display: false}}, y: {beginAtZero: true, title: {display: true, text: "Erlangs"}}}}});
  }

  function renderDestinations() {
    if (missing("destinations")) { return draw("destinations", missing("destinations")); }
    var dir = state.direction >= 0 ? C.directions[state.direction] : null;
    if ((dir && dir !== "outbound") || state.queue !== -2 && state.queue !== -1) {
      return draw("destinations", "Destinations are of outbound calls, which go through no queue.");
    }
    var t = table("destinations"), kept = rows("destinations", [state.from, state.to]), by = {};
    kept.forEach(function (r) {
      var k = r[t.at.destination], x = by[k] || (by[k] = {name: C.destination_names[k], attempts: 0, answered: 0, talk: 0, cost: 0});
      x.attempts += r[t.at.attempts]; x.answered += r[t.at.answered]; x.talk += r[t.at.talk]; x.cost += r[t.at.cost];
    });
    var list = Object.keys(by).map(function (k) { return by[k]; }).filter(function (x) { return x.cost > 0; });
    list.sort(function (a, b) { return b.cost - a.cost || (a.name < b.name ? -1 : 1); });
    list = list.slice(0, D.top_destinations);
    if (!list.length) { return draw("destinations", "No outbound calls with a cost in this period."); }
    draw("destinations", {type: "bar", height: Math.max(220, 60 + 30 * list.length), data: {
      labels: list.map(function (x) { return [x.name, (x.talk ? (x.cost / (x.talk / 60)).toFixed(3) : NA) + " per min"]; }),
      datasets: [{label: "Cost", data: list.map(function (x) { return +x.cost.toFixed(4); }), backgroundColor: BLUE}]},
      options: {indexAxis: "y", plugins: {legend: {display: false}, tooltip: {callbacks: {afterLabel: function (item) {
        var x = list[item.dataIndex]; return x.attempts + " calls, " + x.answered + " answered, " + Math.round(x.talk / 60) + " min"; }}}},
        scales: {x: {beginAtZero: true, title: {display: true, text: "Cost (account currency)"}}, y: {grid: {display: false}}}}});
  }

  function queueTotals(kept) {
    var t = table("queue"), s = sums("queue", kept), longest = null, answered = 0;
    kept.forEach(function (r) { longest = Math.max(longest || 0, r[t.at.longest_wait]); answered += r[t.at.answered]; });
    return {offered: s["queue_offered_calls.n"] || 0,
      sl: ratio(s["queue_service_level.n"], s["queue_service_level.d"]),
      abandon: ratio(s["queue_abandon_rate.n"], s["queue_abandon_rate.d"]),
      asa: ratio(s["queue_asa.n"], s["queue_asa.d"]), longest: longest, answered: answered};
  }
  function queueBlocked(key) {
    if (!table("queue")) { return missing("queues") || "No queue data: model agg_queue_interval is not built (run `voipstudio models`)."; }
    var why = unsplit("queue");
    return why ? "Queue figures: " + why + "." : "";
  }

  function renderQueueTable() {
    var box = document.querySelector('[data-chart-box="queues"]'), why = queueBlocked();
    if (why) { return draw("queues", why); }
    var t = table("queue"), kept = rows("queue", [state.from, state.to]), by = {};
    kept.forEach(function (r) { (by[r[t.at.queue]] = by[r[t.at.queue]] || []).push(r); });
    var names = Object.keys(by);
    if (!names.length) { return draw("queues", "No call entered a queue in this period."); }
    var list = names.map(function (q) { var x = queueTotals(by[q]); x.name = C.queues[+q]; return x; });
    list.sort(function (a, b) { return b.offered - a.offered || (a.name < b.name ? -1 : 1); });
    var clock = clockFormat(list.map(function (x) { return x.asa; }).concat(list.map(function (x) { return x.longest; })));
    var head = [["Queue", "", true], ["Offered", "calls offered to the queue (each queue a call entered)"],
      ["Answered", "answered by this queue"],
      ["Service level", "answered within " + C.sl_seconds + " s of entering / (offered - short abandons)"],
      ["Abandonment", "(abandoned here - short abandons) / (offered - short abandons)"],
      ["ASA (m:ss)", "average speed of answer: wait in the queue of its answered calls"],
      ["Longest wait (m:ss)", "the longest wait of an offered call, answered or not"]];
    box.innerHTML = "";
    box.appendChild(makeTable("queues", head, list.map(function (x) {
      return [x.name, count(x.offered), count(x.answered), percent(x.sl), percent(x.abandon), clock(x.asa), clock(x.longest)];
    })));
  }

  function renderIntervals() {
    var pick = document.getElementById("interval-day"), why = queueBlocked();
    pick.parentNode.parentNode.hidden = Boolean(why);
    if (why) { pick.innerHTML = ""; return draw("intervals", why); }
    var t = table("queue"), kept = rows("queue", [state.from, state.to]), days = {};
    kept.forEach(function (r) { days[r[t.at.day]] = (days[r[t.at.day]] || 0) + r[t.at["queue_offered_calls.n"]]; });
    var list = Object.keys(days).map(Number).sort(function (a, b) { return a - b; });
    pick.parentNode.parentNode.hidden = !list.length;
    if (!list.length) { pick.innerHTML = ""; return draw("intervals", "No call entered a queue in this period."); }
    if (state.day === null || list.indexOf(state.day) < 0) { state.day = list[list.length - 1]; }
    pick.innerHTML = list.map(function (d) { return '<option value="' + d + '"' + (d === state.day ? " selected" : "") +
      ">" + dayLabel(d, true) + " (" + days[d] + " offered)</option>"; }).join("");
    var size = C.interval_minutes || 30, slots = [];
    var byMinute = {};
    kept.filter(function (r) { return r[t.at.day] === state.day; }).forEach(function (r) {
      (byMinute[r[t.at.minute]] = byMinute[r[t.at.minute]] || []).push(r); });
    var minutes = Object.keys(byMinute).map(Number);
    var lo = Math.min.apply(null, minutes), hi = Math.max.apply(null, minutes);
    for (var m = lo; m <= hi; m += size) { slots.push(m); }
    var totals = slots.map(function (m) { return queueTotals(byMinute[m] || []); });
    draw("intervals", {type: "bar", height: 320, data: {labels: slots.map(function (m) { return pad(Math.floor(m / 60)) + ":" + pad(m % 60); }),
      datasets: [
        {label: "Offered", data: totals.map(function (x) { return x.offered; }), backgroundColor: "#9ecae1", yAxisID: "y", order: 2},
        {label: "Answered", data: totals.map(function (x) { return x.answered; }), backgroundColor: GREEN, yAxisID: "y", order: 2},
        {type: "line", label: "Service level", data: totals.map(function (x) { return x.sl === null ? null : +(100 * x.sl).toFixed(1); }),
          borderColor: VERMILION, backgroundColor: VERMILION, yAxisID: "sl", spanGaps: false, order: 1}]},
      options: {plugins: {tooltip: {callbacks: {label: function (item) {
        return item.dataset.label + ": " + (item.dataset.yAxisID === "sl" ? item.raw + "%" : item.raw); }}}},
        scales: {x: {grid: {display: false}, title: {display: true, text: size + "-minute intervals (" + D.timezone + ")"}},
          y: {beginAtZero: true, title: {display: true, text: "Calls"}},
          sl: {position: "right", min: 0, max: 100, grid: {display: false}, title: {display: true, text: "Service level %"}}}}});
  }

  function renderTrends() {
    var why = queueBlocked();
    if (why) { return draw("trends", why); }
    var range = [state.from, state.to], b = buckets(range), t = table("queue"), kept = rows("queue", range);
    if (!kept.length) { return draw("trends", "No call entered a queue in this period."); }
    var per = b.list.map(function () { return []; });
    kept.forEach(function (r) { var i = bucketOf(b, r[t.at.day]); if (i >= 0) { per[i].push(r); } });
    var totals = per.map(queueTotals);
    document.querySelector('[data-sub="trends"]').textContent = "Per " + b.unit + " (" + D.timezone +
      "), over the chosen queues: service level and abandonment (left, %) and average speed of answer (right, seconds).";
    function pct(x) { return x === null ? null : +(100 * x).toFixed(1); }
    draw("trends", {type: "line", height: 300, data: {labels: b.list.map(function (x) { return x.label; }), datasets: [
      {label: "Service level", data: totals.map(function (x) { return pct(x.sl); }), borderColor: GREEN, backgroundColor: GREEN, yAxisID: "pct"},
      {label: "Abandonment", data: totals.map(function (x) { return pct(x.abandon); }), borderColor: VERMILION, backgroundColor: VERMILION, yAxisID: "pct"},
      {label: "ASA (s)", data: totals.map(function (x) { return x.asa === null ? null : +x.asa.toFixed(1); }), borderColor: BLUE,
        backgroundColor: BLUE, borderDash: [5, 4], yAxisID: "sec"}]},
      options: {spanGaps: true, interaction: {mode: "index", intersect: false}, scales: {x: {grid: {display: false}},
        pct: {position: "left", min: 0, max: 100, title: {display: true, text: "%"}},
        sec: {position: "right", beginAtZero: true, grid: {display: false}, title: {display: true, text: "seconds"}}}}});
  }

  function makeTable(key, head, body) {
    var wrap = document.createElement("div"), tbl = document.createElement("table");
    wrap.className = "table-wrap"; tbl.dataset.table = key;
    var tr = document.createElement("tr");
    head.forEach(function (h) { var th = document.createElement("th"); th.textContent = h[0]; th.title = h[1] || "";
      th.className = h[2] ? "text" : "num"; tr.appendChild(th); });
    var thead = document.createElement("thead"); thead.appendChild(tr); tbl.appendChild(thead);
    var tbody = document.createElement("tbody");
    body.forEach(function (cells) {
      var row = document.createElement("tr");
      cells.forEach(function (c, i) { var td = document.createElement("td"); td.textContent = c;
        td.className = head[i][2] ? "text" : "num"; row.appendChild(td); });
      tbody.appendChild(row);
    });
    tbl.appendChild(tbody); wrap.appendChild(tbl);
    return wrap;
  }

  function renderAgents() {
    var box = document.querySelector('[data-chart-box="users"]');
    if (missing("users")) { return draw("users", missing("users")); }
    var t = table("agents"), kept = rows("agents", [state.from, state.to], {direction: true}), by = {};
    kept.forEach(function (r) {
      var k = r[t.at.agent], x = by[k] || (by[k] = {agent: k, offered: 0, answered: 0, rona: 0, answered_talk: 0, outbound: 0, callbacks: 0, talk: 0});
      ["offered", "answered", "rona", "answered_talk", "outbound", "callbacks", "talk"].forEach(function (c) { x[c] += r[t.at[c]]; });
    });
    var list = Object.keys(by).map(function (k) { return by[k]; });
    if (!list.length) { return draw("users", noCalls()); }
    list.sort(function (a, b) { return (b.answered + b.outbound) - (a.answered + a.outbound) || b.talk - a.talk || a.agent - b.agent; });
    var dir = state.direction >= 0 ? C.directions[state.direction] : null;
    var inbound = !dir || dir === "inbound", outbound = !dir || dir === "outbound";
    var several = C.accounts.length > 1 && state.account < 0;
    var aht = list.map(function (x) { return ratio(x.answered_talk, x.answered); });
    var clockAht = clockFormat(aht), clockTalk = clockFormat(list.map(function (x) { return x.talk; }));
    var head = [].concat(several ? [["Account", "the VoIPstudio account of the user", true]] : [],
      [["Agent", "", true], ["Ext.", "extension", true],
       ["Offered", "inbound calls that rang the agent"], ["Answered", "of those, answered by the agent"],
       ["Not answered (RONA)", "rang the agent, nobody took it from them: ring no answer"],
       ["Average handle time (AHT, m:ss)", "talk of the answered inbound calls / answered (CDRs carry no hold or wrap-up)"],
       ["Outbound", "outbound calls the agent placed"], ["Callbacks", "outbound calls that called back a missed call"],
       ["Talk (" + (list.some(function (x) { return x.talk >= 3599.5; }) ? "h:mm:ss" : "m:ss") + ")", "time in conversation, all the agent's legs"]]);
    box.innerHTML = "";
    box.appendChild(makeTable("users", head, list.map(function (x, i) {
      var a = C.agents_list[x.agent];
      return [].concat(several ? [C.accounts[a[0]]] : [], [a[2], a[3],
        inbound ? count(x.offered) : NA, inbound ? count(x.answered) : NA, inbound ? count(x.rona) : NA,
        inbound ? clockAht(aht[i]) : NA, outbound ? count(x.outbound) : NA, outbound ? count(x.callbacks) : NA, clockTalk(x.talk)]);
    })));
  }

  function renderMissed() {
    var box = document.querySelector('[data-chart-box="open_missed"]'), sub = document.querySelector('[data-sub="open_missed"]');
    if (missing("open_missed")) { return draw("open_missed", missing("open_missed")); }
    var dir = state.direction >= 0 ? C.directions[state.direction] : null;
    if (state.agent >= 0 || (dir && dir !== "inbound")) {
      return draw("open_missed", state.agent >= 0 ? "A missed call has no agent: clear the agent filter to see them." : "Missed calls are inbound.");
    }
    var t = table("missed"), kept = rows("missed", [state.from, state.to], {agent: true}), by = {}, order = [];
    kept.forEach(function (r) {
      var k = r[t.at.account] + "|" + r[t.at.number], x = by[k];
      if (!x) { x = by[k] = {account: r[t.at.account], number: r[t.at.number], calls: 0, first: r[t.at.at], last: r[t.at.at],
        ended: r[t.at.ended], horizon: r[t.at.horizon], business: false}; order.push(x); }
      x.calls += 1; if (r[t.at.at] < x.first) { x.first = r[t.at.at]; } if (r[t.at.at] > x.last) { x.last = r[t.at.at]; }
      x.ended = Math.max(x.ended, r[t.at.ended]); x.business = x.business || r[t.at.business] === 1;
    });
    if (!order.length) { return draw("open_missed", "Every missed call with a number in this period has been called back."); }
    var several = C.accounts.length > 1 && state.account < 0, total = kept.length;
    sub.textContent = order.length.toLocaleString("en-US") + " numbers, " + total.toLocaleString("en-US") +
      " missed calls. Inbound calls nobody answered, from a number with no contact since (no outbound call to it, no " +
      "answered call from it" + (several ? ", within the same account" : "") + "). Most recent first; times in " + D.timezone + ".";
    function when(text) { var d = dayIndex(text.slice(0, 10)); return WEEKDAYS[weekday(d)] + " " + dayLabel(d, false) + " " + text.slice(11, 16); }
    var shown = order.slice(0, D.open_missed_rows);
    var head = [].concat(several ? [["Account", "the VoIPstudio account that missed the calls", true]] : [],
      [["Number", "the caller's number, normalized", true], ["Missed calls", "missed calls from the number in the period with no callback yet"],
       ["First missed", ""], ["Last missed", ""], ["Waiting", "since the last missed call ended, up to the newest call loaded"],
       ["Business hours", "whether a missed call came in business hours"]]);
    box.innerHTML = "";
    box.appendChild(makeTable("open_missed", head, shown.map(function (x) {
      return [].concat(several ? [C.accounts[x.account]] : [], [x.number, count(x.calls), when(x.first), when(x.last),
        duration(Math.max(x.horizon - x.ended, 0)), x.business ? "yes" : "no"]);
    })));
    if (order.length > shown.length) {
      var more = document.createElement("p"); more.className = "more";
      more.textContent = "Showing the " + shown.length + " most recent of " + order.length.toLocaleString("en-US") + " numbers.";
      box.appendChild(more);
    }
  }

  /* ---- the filters ---- */
  function option(value, label, selected) {
    var o = document.createElement("option"); o.value = String(value); o.textContent = label; o.selected = selected; return o;
  }
  function fillFilters() {
    var from = document.getElementById("f-from"), to = document.getElementById("f-to");
    from.min = to.min = D.period.start; from.max = to.max = D.period.end;
    from.value = dayText(state.from); to.value = dayText(state.to);
    var acc = document.getElementById("f-account");
    acc.appendChild(option(-1, C.accounts.length > 1 ? "All accounts" : (C.accounts[0] || "no account"), true));
    if (C.accounts.length > 1) { C.accounts.forEach(function (a, i) { acc.appendChild(option(i, a, false)); }); }
    acc.disabled = C.accounts.length < 2;
    var q = document.getElementById("f-queue");
    q.appendChild(option(-2, "All calls", true)); q.appendChild(option(-1, "No queue (direct calls)", false));
    C.queues.map(function (name, i) { return [name, i]; }).sort().forEach(function (p) { q.appendChild(option(p[1], p[0], false)); });
    var ag = document.getElementById("f-agent");
    ag.appendChild(option(-1, "All agents", true));
    C.agents_list.map(function (a, i) { return [a, i]; }).sort(function (x, y) { return x[0][2] < y[0][2] ? -1 : 1; }).forEach(function (p) {
      var a = p[0]; ag.appendChild(option(p[1], a[2] + (a[3] ? " (" + a[3] + ")" : "") + (C.accounts.length > 1 ? " \u00b7 " + C.accounts[a[0]] : ""), false));
    });
    var dir = document.getElementById("f-direction");
    dir.appendChild(option(-1, "All directions", true));
    C.directions.slice(0, 3).forEach(function (d, i) { dir.appendChild(option(i, d[0].toUpperCase() + d.slice(1), false)); });
  }
  function readFilters() {
    var from = document.getElementById("f-from").value, to = document.getElementById("f-to").value;
    var a = from ? dayIndex(from) : dayIndex(D.period.start), b = to ? dayIndex(to) : dayIndex(D.period.end);
    var lo = dayIndex(D.period.start), hi = dayIndex(D.period.end);
    a = Math.min(Math.max(a, lo), hi); b = Math.min(Math.max(b, lo), hi);
    if (a > b) { var x = a; a = b; b = x; }
    state.from = a; state.to = b;
    state.account = +document.getElementById("f-account").value;
    state.queue = +document.getElementById("f-queue").value;
    state.agent = +document.getElementById("f-agent").value;
    state.direction = +document.getElementById("f-direction").value;
  }
  function summary() {
    var parts = [rangeLabel(state.from, state.to) + " (" + (state.to - state.from + 1) + (state.to === state.from ? " day)" : " days)")];
    if (state.account >= 0) { parts.push("account " + C.accounts[state.account]); }
    if (state.queue === -1) { parts.push("calls through no queue"); }
    if (state.queue >= 0) { parts.push("queue " + C.queues[state.queue] + " (calls that entered it first; queue figures: every call it was offered)"); }
    if (state.agent >= 0) { parts.push("agent " + C.agents_list[state.agent][2] + " (calls they answered or placed)"); }
    if (state.direction >= 0) { parts.push(C.directions[state.direction] + " calls"); }
    document.getElementById("filter-summary").textContent = "Showing " + parts.join(" \u00b7 ") + ".";
  }

  function render() {
    summary();
    renderTiles();
    renderDaily(); renderHeatmap(); renderDestinations(); renderTraffic();
    renderQueueTable(); renderIntervals(); renderTrends();
    renderAgents(); renderMissed();
  }
  // The browser tests and anyone at the console: set filters by value, read the state.
  window.report = {
    state: state,
    set: function (filters) {
      Object.keys(filters).forEach(function (k) {
        var el = document.getElementById("f-" + k); if (el) { el.value = String(filters[k]); }
      });
      readFilters(); render(); return state;
    },
    agent: function (index) { return C.agents_list[index][1]; },
    charts: charts
  };
  try {
    fillFilters();
    render();
    document.querySelectorAll(".filters select, .filters input").forEach(function (el) {
      el.addEventListener("change", function () { readFilters(); render(); });
    });
    document.getElementById("interval-day").addEventListener("change", function (e) {
      state.day = +e.target.value; renderIntervals(); });
    document.getElementById("f-reset").addEventListener("click", function () {
      window.report.set({from: D.period.start, to: D.period.end, account: -1, queue: -2, agent: -1, direction: -1}); });
    document.body.setAttribute("data-rendered", "true");
  } catch (error) {
    document.body.setAttribute("data-rendered", "failed");
    console.error("the dashboard failed to render", error);
  }
})();
