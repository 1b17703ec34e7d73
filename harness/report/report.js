(function () {
  var cases = Array.prototype.slice.call(document.querySelectorAll("details.case"));
  var count = document.getElementById("case-count");
  var buttons = Array.prototype.slice.call(document.querySelectorAll("[data-filter]"));
  function show(filter) {
    var shown = 0;
    cases.forEach(function (item) {
      var visible = filter === "all" || item.getAttribute("data-" + filter) === "1";
      item.hidden = !visible;
      if (visible) { shown += 1; }
    });
    buttons.forEach(function (b) { b.setAttribute("aria-pressed", String(b.getAttribute("data-filter") === filter)); });
    if (count) { count.textContent = shown + " of " + cases.length + " cases shown"; }
  }
  buttons.forEach(function (b) { b.addEventListener("click", function () { show(b.getAttribute("data-filter")); }); });
  function setOpen(open) { cases.forEach(function (item) { if (!item.hidden) { item.open = open; } }); }
  var expand = document.getElementById("expand-all");
  var collapse = document.getElementById("collapse-all");
  if (expand) { expand.addEventListener("click", function () { setOpen(true); }); }
  if (collapse) { collapse.addEventListener("click", function () { setOpen(false); }); }
  show("all");
  // A table wider than the page (a horizontal scroll bar) is a layout bug; the test reads this attribute.
  var wide = Array.prototype.filter.call(document.querySelectorAll(".scroll"), function (box) {
    return box.scrollWidth > box.clientWidth + 1;
  }).map(function (box) { var s = box.closest("section"); return s ? s.id : "?"; });
  if (wide.length) { document.documentElement.setAttribute("data-overflow", wide.join(" ")); }
  document.documentElement.setAttribute("data-ready", "1");
})();
