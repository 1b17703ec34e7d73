// prompt-harness viewer: hash routes over the JSON files under data/. Every text from a run is inserted as
// text (textContent), never as markup; numbers arrive formatted by the harness, so pages and reports agree.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var cache = {};
  var COLORS = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#1b7c83", "#bc4c00", "#6e7781"];
  var CASES_SHOWN = 50;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] == null) return;
      if (k === "text") node.textContent = attrs[k];
      else if (k === "cls") node.className = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c != null) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }
  function load(path) {
    if (!cache[path]) {
      cache[path] = fetch(path).then(function (r) {
        if (!r.ok) throw new Error(path + ": HTTP " + r.status);
        return r.json();
      });
    }
    return cache[path];
  }
  function show() { main.replaceChildren.apply(main, Array.prototype.filter.call(arguments, function (n) { return n != null; })); }
  function link(text, hash) { return el("a", { href: hash, text: text }); }
  function route() { return location.hash.replace(/^#\/?/, "").split("?")[0].split("/").map(decodeURIComponent); }
  function params() {
    var q = location.hash.split("?")[1] || "";
    var out = {};
    q.split("&").forEach(function (kv) { if (kv) { var p = kv.split("="); out[decodeURIComponent(p[0])] = decodeURIComponent(p[1] || ""); } });
    return out;
  }
  function hash(parts, query) {
    var q = Object.keys(query || {}).filter(function (k) { return query[k]; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(query[k]); }).join("&");
    return "#/" + parts.map(encodeURIComponent).join("/") + (q ? "?" + q : "");
  }
  function date(stamp) { return stamp ? new Date(stamp * 1000).toISOString().slice(0, 16).replace("T", " ") : "?"; }
  function commit(run) { return run.commit_sha ? run.commit_sha.slice(0, 8) + (run.dirty ? "*" : "") : "–"; }
  function pct(x) { return x == null ? "–" : (x * 100).toFixed(1) + "%"; }
  function worst(sentences) {
    var text = (sentences || []).join(" ");
    return ["BLOCK", "WARN", "IMPROVEMENT"].filter(function (v) { return text.indexOf(v) >= 0; })[0] || "";
  }
  function headline(sentences) {
    return el("div", { cls: "headline " + worst(sentences), id: "headline" },
      (sentences || []).map(function (s) { return el("p", { text: s }); }));
  }
  function table(headers, rows, attrs) {
    return el("table", attrs || {}, [el("thead", {}, [el("tr", {}, headers.map(function (h) { return el("th", { text: h }); }))]),
      el("tbody", {}, rows)]);
  }
  function td(text, cls) { return el("td", { text: text == null ? "–" : String(text), cls: cls || "" }); }
  function done() { document.documentElement.setAttribute("data-ready", "1"); document.documentElement.setAttribute("data-ready-ms", String(Math.round(performance.now()))); }
  function fail(err) {
    show(el("h1", { text: "Could not load this page" }), el("p", { cls: "note", text: String(err && err.message || err) }));
    document.documentElement.setAttribute("data-page-error", String(err && err.message || err));
    done();
  }

  // ---- Runs -------------------------------------------------------------------------------------------------
  function runsPage() {
    return load("data/runs.json").then(function (data) {
      var q = params();
      var suites = uniq(data.runs.map(function (r) { return r.suite; }));
      var branches = uniq(data.runs.map(function (r) { return r.branch || ""; }).filter(Boolean));
      function choose(name, values) {
        var s = el("select", { id: "filter-" + name, onchange: function () { var n = params(); n[name] = s.value; location.hash = hash([], n); } },
          [el("option", { value: "", text: "every " + name })].concat(values.map(function (v) { return el("option", { value: v, text: v }); })));
        s.value = q[name] || "";
        return s;
      }
      var shown = data.runs.filter(function (r) { return (!q.suite || r.suite === q.suite) && (!q.branch || r.branch === q.branch); }).reverse();
      var rows = shown.map(function (r, i) {
        var prev = data.runs.filter(function (o) { return o.suite === r.suite && o.started_at < r.started_at && o.trials_done; }).pop();
        return el("tr", { "data-run": r.run_id }, [
          el("td", {}, [link(r.suite, hash(["suite", r.suite]))]),
          el("td", {}, [link(r.run_id, hash(["run", r.suite, r.run_id]))]),
          td(date(r.started_at), "num"), td(r.status), td(r.trials_done + "/" + r.trials_planned, "num"),
          td(commit(r), "num"), td(r.branch || "–"),
          el("td", {}, (r.variants || []).map(function (v) { return el("div", { text: v.variant + ": " + pct(v.pass_rate.estimate) }); })),
          el("td", {}, [el("div", { text: (r.headline || [])[0] || "" }), prev ? link("compare with previous", hash(["compare", r.suite, prev.run_id, r.run_id])) : null]),
        ]);
      });
      show(el("h1", { text: "Runs" }), el("div", { cls: "controls" }, [choose("suite", suites), choose("branch", branches),
        el("span", { cls: "note", text: shown.length + " of " + data.runs.length + " runs" })]),
        table(["suite", "run", "started (UTC)", "status", "trials", "commit", "branch", "pass rate", "headline"], rows, { id: "runs" }));
    });
  }
  function uniq(xs) { return xs.filter(function (x, i) { return xs.indexOf(x) === i; }).sort(); }

  // ---- Suite trends -----------------------------------------------------------------------------------------
  function chart(title, series, field, band, fmt) {
    var W = 420, H = 200, L = 48, B = 24, T = 8, R = 8;
    var box = svg("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", role: "img", "aria-label": title });
    var values = [];
    series.forEach(function (s) { s.points.forEach(function (p) {
      [p[field], band ? p[band[0]] : null, band ? p[band[1]] : null].forEach(function (v) { if (v != null) values.push(v); }); }); });
    var n = Math.max.apply(null, series.map(function (s) { return s.total; }).concat([1]));
    var lo = Math.min.apply(null, values.concat([band ? 0 : Infinity])), hi = Math.max.apply(null, values.concat([band ? 1 : -Infinity]));
    if (!values.length) { lo = 0; hi = 1; }
    if (hi === lo) { hi = lo + 1; }
    function x(i) { return L + (n <= 1 ? 0 : i * (W - L - R) / (n - 1)); }
    function y(v) { return H - B - (v - lo) * (H - B - T) / (hi - lo); }
    [lo, (lo + hi) / 2, hi].forEach(function (v) {
      box.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#eaeef2" }));
      var t = svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 10, fill: "#656d76" }); t.textContent = fmt(v); box.appendChild(t);
    });
    series.forEach(function (s, k) {
      var color = COLORS[k % COLORS.length];
      var pts = s.points.filter(function (p) { return p[field] != null; });
      if (band) {
        var upper = pts.filter(function (p) { return p[band[1]] != null && p[band[0]] != null; });
        if (upper.length) {
          var poly = upper.map(function (p) { return x(p.i) + "," + y(p[band[1]]); }).concat(upper.slice().reverse().map(function (p) { return x(p.i) + "," + y(p[band[0]]); }));
          box.appendChild(svg("polygon", { points: poly.join(" "), fill: color, "fill-opacity": 0.12, stroke: "none", "class": "band" }));
        }
      }
      box.appendChild(svg("polyline", { points: pts.map(function (p) { return x(p.i) + "," + y(p[field]); }).join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
      pts.forEach(function (p) {
        var c = svg("circle", { cx: x(p.i), cy: y(p[field]), r: 3, fill: color });
        var tip = svg("title", {}); tip.textContent = s.label + " · " + p.run_id + ": " + p.display; c.appendChild(tip); box.appendChild(c);
      });
    });
    return el("div", { cls: "chart" }, [el("h3", { text: title }), box]);
  }
  function suitePage(suite) {
    var slugPath;
    return load("data/runs.json").then(function (data) {
      var run = data.runs.filter(function (r) { return r.suite === suite; })[0];
      if (!run) throw new Error("no runs of suite " + suite);
      slugPath = run.trends;
      return load(slugPath);
    }).then(function (t) {
      var index = {}; t.runs.forEach(function (r, i) { index[r.run_id] = i; });
      function series(display) {
        return t.variants.map(function (v) { return { label: v, total: t.runs.length, points: t.series[v].map(function (p) {
          var q = Object.assign({ i: index[p.run_id] }, p); q.display = p.display[display]; return q; }) }; });
      }
      var legend = el("div", { cls: "legend" }, t.variants.map(function (v, k) { var i = el("i"); i.setAttribute("class", "c" + k); var s = el("span", {}, [i, v]); i.style.background = COLORS[k % COLORS.length]; return s; }));
      var charts = el("div", { cls: "charts" }, [
        chart("pass rate (95% interval band)", series("pass_rate"), "pass_rate", ["pass_low", "pass_high"], function (v) { return Math.round(v * 100) + "%"; }),
        chart("cost per 1k cases", series("cost"), "cost_per_case", null, function (v) { return "$" + (v * 1000).toPrecision(2); }),
        chart("latency p95", series("latency_p95"), "latency_p95_s", null, function (v) { return v < 1 ? Math.round(v * 1000) + "ms" : v.toFixed(2) + "s"; }),
      ]);
      var pick = el("select", { id: "heat-variant" }, t.variants.map(function (v) { return el("option", { value: v, text: v }); }));
      var holder = el("div", { id: "heatmap" });
      function draw() {
        var rows = (t.heatmap[pick.value] || []).map(function (row) {
          return el("tr", {}, [el("td", { cls: "case-id", text: row.case })].concat(row.cells.map(function (c, j) {
            var cell = el("td", { cls: "cell " + (c ? c[0] : "none") + (c && c[1] ? " changed" : ""), "data-case": row.case, "data-run": t.heatmap_runs[j] });
            cell.title = row.case + " · " + t.heatmap_runs[j] + ": " + (c ? c[0] + (c[1] ? " (changed)" : "") : "not run");
            return cell;
          })));
        });
        holder.replaceChildren(el("table", { cls: "heat" }, [el("thead", {}, [el("tr", {}, [el("th", { text: "case \\ run" })].concat(
          t.heatmap_runs.map(function (r) { return el("th", { cls: "run" }, [link(r, hash(["run", suite, r]))]); })))]), el("tbody", {}, rows)]));
      }
      pick.addEventListener("change", draw);
      draw();
      show(el("h1", { text: "Suite " + suite }), el("p", { cls: "note", text: t.runs.length + " runs with finished trials · " + t.variants.length + " variants" }),
        legend, charts, el("h2", { text: "Cases × runs" }),
        el("div", { cls: "controls" }, [pick, el("span", { cls: "legend" }, ["pass", "fail", "error", "mixed", "changed"].map(function (s) {
          return el("span", {}, [el("i", { cls: "" }), s]); }))]), holder);
      Array.prototype.forEach.call(main.querySelectorAll(".controls .legend span"), function (s, k) { s.firstChild.style.background = ["#1a7f37", "#cf222e", "#8250df", "#bf8700", "#fff"][k]; s.firstChild.style.outline = k === 4 ? "2px solid #1f2328" : ""; });
    });
  }

  // ---- Run --------------------------------------------------------------------------------------------------
  function trialBlock(label, trial) {
    return el("div", { cls: "side" }, [
      el("h4", {}, [el("span", { cls: "badge " + trial.state, text: label + ": " + trial.state }), " repeat " + trial.repeat,
        el("span", { cls: "mute", text: (trial.latency_ms != null ? " · " + Math.round(trial.latency_ms) + " ms" : "") })]),
      el("pre", { text: trial.error || trial.output || "(empty output)" }),
      el("ul", { cls: "reasons" }, trial.grades.map(function (g) { return el("li", { text: g.grader + " " + (g.passed === true ? "✓" : g.passed === false ? "✗" : "?") + " " + g.reason }); })),
    ]);
  }
  function runPage(suite, runId) {
    return load("data/runs.json").then(function (data) {
      var run = data.runs.filter(function (r) { return r.suite === suite && r.run_id === runId; })[0];
      if (!run) throw new Error("no run " + runId + " of suite " + suite);
      return load(run.data + "/summary.json").then(function (s) { return [run, s]; });
    }).then(function (pair) {
      var run = pair[0], s = pair[1];
      var q = params();
      var variants = table(["variant", "pass rate [95% CI]", "score", "errors", "cost", "judge cost", "latency p50", "latency p95", "cases"],
        s.variants.map(function (v) { var d = v.display; return el("tr", {}, [td(v.variant), td(d.pass_rate, "num"), td(d.score, "num"), td(d.errors, "num"),
          td(d.cost, "num"), td(d.judge_cost, "num"), td(d.latency_p50, "num"), td(d.latency_p95, "num"), td(v.n_cases, "num")]); }), { id: "variants" });
      var comps = s.comparisons.length ? table(["candidate vs baseline", "metric", "Δ [95% CI]", "p (Holm)", "verdict", ""],
        s.comparisons.map(function (c) { return el("tr", {}, [td(c.candidate + " vs " + c.baseline), td(c.metric), td(c.display.delta, "num"), td(c.display.p, "num"),
          el("td", { cls: "verdict " + c.gate.verdict, text: c.gate.verdict }), el("td", {}, [link("side by side", hash(["compare", suite, runId, runId], { va: c.baseline, vb: c.candidate }))])]); }), { id: "comparisons" })
        : el("p", { cls: "note", text: "No comparison in this run." });
      var search = el("input", { id: "case-search", type: "search", placeholder: "case id", value: q.case || "" });
      var stateSel = el("select", { id: "case-state" }, ["", "pass", "fail", "mixed", "error"].map(function (v) { return el("option", { value: v, text: v || "every state" }); }));
      var list = el("div", { id: "cases" });
      var page = Math.max(0, parseInt(q.page || "0", 10) || 0);
      function showCases() {
        var term = search.value.trim();
        if (term) {
          var at = s.case_ids.indexOf(term);
          if (at < 0) at = s.case_ids.findIndex(function (id) { return id.indexOf(term) >= 0; });
          if (at >= 0) page = Math.floor(at / s.pages.size);
        }
        list.replaceChildren(el("p", { cls: "note", text: "loading cases…" }));
        return load(s.pages.path + String(page).padStart(4, "0") + ".json").then(function (p) {
          var shown = p.cases.filter(function (c) {
            return (!term || c.id.indexOf(term) >= 0) && (!stateSel.value || Object.keys(c.variants).some(function (k) { return c.variants[k].state === stateSel.value; }));
          });
          var nodes = [el("div", { cls: "pager" }, [
            el("button", { text: "‹ previous", disabled: page === 0 ? "disabled" : null, onclick: function () { page -= 1; showCases(); } }),
            el("span", { id: "case-count", cls: "note", text: "page " + (page + 1) + " of " + s.pages.count + " · " + shown.length + " of " + p.cases.length + " cases on this page · " + s.pages.cases + " in the run" }),
            el("button", { text: "next ›", disabled: page + 1 >= s.pages.count ? "disabled" : null, onclick: function () { page += 1; showCases(); } }),
          ])].concat(shown.map(function (c) {
            var details = el("div", { hidden: "hidden" });
            var title = el("div", { cls: "title" }, [el("b", { text: c.id })].concat(Object.keys(c.variants).map(function (k) {
              return el("span", { cls: "badge " + c.variants[k].state, text: k + ": " + c.variants[k].state }); })).concat([
              el("button", { text: "outputs", onclick: function () {
                if (!details.childNodes.length) {
                  Object.keys(c.inputs).forEach(function (prompt) { details.appendChild(el("pre", { cls: "input", text: prompt + " →\n" + c.inputs[prompt].map(function (m) { return m[0] + ": " + m[1]; }).join("\n") })); });
                  var grid = el("div", { cls: "sides" });
                  Object.keys(c.variants).forEach(function (k) { c.variants[k].trials.forEach(function (t) { grid.appendChild(trialBlock(k, t)); }); });
                  details.appendChild(grid);
                }
                if (details.hasAttribute("hidden")) details.removeAttribute("hidden"); else details.setAttribute("hidden", "hidden");
              } })]));
            return el("div", { cls: "case", "data-case": c.id }, [title, details]);
          }));
          list.replaceChildren.apply(list, nodes);
        });
      }
      search.addEventListener("change", showCases);
      stateSel.addEventListener("change", showCases);
      var facts = [run.status, run.trials_done + "/" + run.trials_planned + " trials", "started " + date(run.started_at) + " UTC",
        "commit " + commit(run) + (run.branch ? " on " + run.branch : ""), "suite hash " + run.suite_hash];
      show(el("h1", { text: suite + " · " + runId }), el("p", { cls: "note", text: facts.join(" · ") }),
        headline(s.headline), el("h2", { text: "Variants" }), variants, el("h2", { text: "Comparisons" }), comps,
        (s.notes || []).length ? el("ul", {}, s.notes.map(function (n) { return el("li", { text: n }); })) : null,
        el("h2", { text: "Cases" }), el("div", { cls: "controls" }, [search, stateSel]), list);
      return showCases();
    });
  }

  // ---- Compare ----------------------------------------------------------------------------------------------
  function diffPre(segments, side) {
    var pre = el("pre", { cls: "diff" });
    segments.forEach(function (s) {
      if (s[0] === "=") pre.appendChild(document.createTextNode(s[1]));
      else if (s[0] === "-" && side === "a") pre.appendChild(el("del", { text: s[1] }));
      else if (s[0] === "+" && side === "b") pre.appendChild(el("ins", { text: s[1] }));
    });
    return pre;
  }
  function comparePath(suite, a, b, va, vb) {
    var key = [suite, a, b, va || "", vb || ""].join("|");
    return load("data/compare/index.json").then(function (idx) {
      if (idx[key]) return idx[key];
      var url = "api/compare?" + ["suite", suite, "a", a, "b", b, "va", va || "", "vb", vb || ""].reduce(function (acc, v, i, all) {
        return i % 2 ? acc : acc.concat(encodeURIComponent(v) + "=" + encodeURIComponent(all[i + 1])); }, []).join("&");
      return fetch(url).then(function (r) {
        if (r.status === 404 || r.status === 501) throw new Error("this comparison is not in the site; open it with `harness view` (which computes any pair) or pick a precomputed one");
        return r.json().then(function (j) { if (!r.ok) throw new Error(j.error); delete cache["data/compare/index.json"]; return j.path; });
      });
    });
  }
  function comparePage(suite, a, b) {
    var q = params();
    return Promise.all([load("data/runs.json"), comparePath(suite, a, b, q.va, q.vb)]).then(function (got) {
      return load(got[1]).then(function (c) { return [got[0], c]; });
    }).then(function (got) {
      var data = got[0], c = got[1];
      var runs = data.runs.filter(function (r) { return r.suite === suite; }).map(function (r) { return r.run_id; });
      function runSel(id, value) {
        var s = el("select", { id: id }, runs.map(function (r) { return el("option", { value: r, text: r }); })); s.value = value; return s;
      }
      var selA = runSel("run-a", a), selB = runSel("run-b", b);
      var go = el("button", { text: "compare", onclick: function () { location.hash = hash(["compare", suite, selA.value, selB.value]); } });
      var filter = q.filter || "", term = el("input", { id: "compare-search", type: "search", placeholder: "search case ids and outputs" });
      var list = el("div", { id: "flips" });
      var buttons = ["", "regression", "fix", "disagreement", "error"].map(function (f) {
        return el("button", { "data-filter": f, text: (f ? f + "s" : "all") + (f ? " (" + c.counts[f] + ")" : ""), onclick: function () { filter = f; draw(); } });
      });
      function draw() {
        buttons.forEach(function (btn) { btn.className = btn.getAttribute("data-filter") === filter ? "on" : ""; });
        var needle = term.value.trim().toLowerCase();
        var shown = c.cases.filter(function (k) {
          if (filter && k.tags.indexOf(filter) < 0) return false;
          if (!needle) return true;
          var hay = (k.id + " " + k.a.trials.concat(k.b.trials).map(function (t) { return t.output; }).join(" ")).toLowerCase();
          return hay.indexOf(needle) >= 0;
        });
        list.replaceChildren(el("p", { id: "flip-count", cls: "note", text: shown.length + " of " + c.cases.length + " cases shown · " + c.unchanged_cases + " unchanged cases not listed" + (shown.length > CASES_SHOWN ? " · first " + CASES_SHOWN + " shown, search to narrow" : "") }));
        shown.slice(0, CASES_SHOWN).forEach(function (k) {
          var ta = k.a.trials[0], tb = k.b.trials[0];
          function side(label, s, t, which) {
            return el("div", { cls: "side " + which }, [
              el("h4", {}, [el("span", { cls: "badge " + s.state, text: label + ": " + s.state }),
                el("span", { cls: "mute", text: " " + s.display })]),
              t ? diffPre(k.diff, which) : el("p", { cls: "note", text: "not run on this side" }),
              t ? el("ul", { cls: "reasons" }, t.grades.map(function (g) { return el("li", { text: g.grader + " " + (g.passed === true ? "✓" : g.passed === false ? "✗" : "?") + " " + g.reason }); })) : null,
              t && t.error ? el("p", { cls: "note", text: t.error }) : null,
            ]);
          }
          list.appendChild(el("div", { cls: "case", "data-case": k.id, "data-tags": k.tags.join(" ") }, [
            el("div", { cls: "title" }, [el("b", { text: k.id })].concat(k.tags.map(function (t) { return el("span", { cls: "tag", text: t }); }))),
            el("div", { cls: "sides" }, [side("A " + c.a.variant, k.a, ta, "a"), side("B " + c.b.variant, k.b, tb, "b")]),
          ]));
        });
      }
      term.addEventListener("input", draw);
      var comps = c.comparisons.length ? table(["B vs A", "metric", "A → B", "Δ [95% CI]", "p (Holm)", "verdict"], c.comparisons.map(function (x) {
        return el("tr", {}, [td(x.candidate + " vs " + x.baseline), td(x.metric), td(x.display.levels, "num"),
          td(x.display.delta, "num"), td(x.display.p, "num"), el("td", { cls: "verdict " + x.gate.verdict, text: x.gate.verdict })]); }), { id: "compare-table" })
        : el("p", { cls: "note", text: "No paired comparison." });
      show(el("h1", { text: "Compare · " + suite }),
        el("div", { cls: "controls" }, ["A", selA, "B", selB, go]),
        el("p", { cls: "note", text: "A: " + c.a.run + " · " + c.a.variant + " — B: " + c.b.run + " · " + c.b.variant }),
        headline(c.headline), comps, (c.notes || []).length ? el("ul", {}, c.notes.map(function (n) { return el("li", { text: n }); })) : null,
        el("h2", { text: "Cases that moved or need reading" }), el("div", { cls: "controls" }, buttons.concat([term])), list);
      draw();
    });
  }

  function render() {
    var r = route();
    document.documentElement.removeAttribute("data-ready");
    var page;
    if (r[0] === "suite" && r[1]) page = suitePage(r[1]);
    else if (r[0] === "run" && r[2]) page = runPage(r[1], r[2]);
    else if (r[0] === "compare" && r[3]) page = comparePage(r[1], r[2], r[3]);
    else page = runsPage();
    document.getElementById("nav-suite").replaceChildren(r[1] ? link("Suite " + r[1], hash(["suite", r[1]])) : "");
    Promise.resolve(page).then(done, fail);
  }
  window.addEventListener("hashchange", render);
  render();
})();
