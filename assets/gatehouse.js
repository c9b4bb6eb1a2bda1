// Gatehouse's own script (no inline scripts: the Content-Security-Policy
// allows only files from /assets/). It does six things:
//
//  1. The colour theme: pages follow the system's prefers-color-scheme
//     until the person presses the theme button in the top bar, which
//     cycles system → the other theme → the system's theme → system; a
//     choice is remembered in localStorage. Loaded in <head> without
//     defer, so a remembered theme applies before the first paint.
//  2. On a phone, the admin sections' row scrolls its current one into view.
//  3. A table that scrolls sideways fades its right edge while more is
//     there.
//  4. The grants matrix is one tab stop whose toggles the arrow keys move
//     through.
//  5. Copy buttons ([data-copy]), such as the recovery codes'.
//  6. The keyboard focus through htmx swaps: htmx itself refocuses an
//     element with the same id, or an [autofocus] element in new content;
//     when neither exists and the focused element was swapped away, the
//     swapped-in content takes the focus instead of <body>.
(function () {
  "use strict";
  var root = document.documentElement;
  var KEY = "gatehouse-theme";

  function stored() {
    try {
      return localStorage.getItem(KEY);
    } catch (e) {
      return null;
    }
  }
  var remembered = stored();
  if (remembered === "light" || remembered === "dark") {
    root.setAttribute("data-theme", remembered);
  }

  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function system() {
    return darkQuery && darkQuery.matches ? "dark" : "light";
  }
  // mode is "light", "dark", or "system" (follow the system's setting).
  function mode() {
    var t = root.getAttribute("data-theme");
    return t === "light" || t === "dark" ? t : "system";
  }
  function sync(button) {
    var m = mode();
    var label = m === "system" ? "Theme: follows the system (" + system() + " now)" : "Theme: " + m;
    button.setAttribute("data-mode", m);
    button.setAttribute("aria-label", label + ". Press to change.");
    button.title = label;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("theme-toggle");
    if (!button) {
      return;
    }
    button.hidden = false;
    sync(button);
    // The button cycles: following the system → the other theme → the
    // system's theme, kept → following the system again. Every press
    // changes something visible, and the system can always be followed
    // again.
    button.addEventListener("click", function () {
      var m = mode();
      var sys = system();
      var next;
      if (m === "system") {
        next = sys === "dark" ? "light" : "dark";
      } else if (m !== sys) {
        next = sys;
      } else {
        next = "system";
      }
      try {
        if (next === "system") {
          localStorage.removeItem(KEY);
        } else {
          localStorage.setItem(KEY, next);
        }
      } catch (e) {
        // Private windows may refuse storage: the theme still changes.
      }
      if (next === "system") {
        root.removeAttribute("data-theme");
      } else {
        root.setAttribute("data-theme", next);
      }
      sync(button);
    });
    if (darkQuery && darkQuery.addEventListener) {
      darkQuery.addEventListener("change", function () {
        sync(button);
      });
    }
  });

  // On a phone the admin sections are one row that scrolls sideways: show
  // the current one.
  document.addEventListener("DOMContentLoaded", function () {
    var current = document.querySelector('.admin-nav [aria-current="page"]');
    var nav = current && current.closest(".admin-nav");
    if (nav && nav.scrollWidth > nav.clientWidth) {
      nav.scrollLeft = current.offsetLeft - (nav.clientWidth - current.offsetWidth) / 2;
    }
  });

  // A table wider than its box scrolls sideways: mark it while more is
  // to the right (the stylesheet fades the edge), on load, after htmx
  // swaps (panels refresh) and as it scrolls or the window resizes.
  function markScrollers() {
    var wraps = document.querySelectorAll(".table-wrap");
    for (var i = 0; i < wraps.length; i++) {
      var w = wraps[i];
      var more = w.scrollWidth - w.clientWidth - w.scrollLeft > 2;
      if (more) {
        w.setAttribute("data-more", "right");
      } else {
        w.removeAttribute("data-more");
      }
      if (!w.hasAttribute("data-watched")) {
        w.setAttribute("data-watched", "");
        w.addEventListener("scroll", markScrollers, { passive: true });
      }
    }
  }
  document.addEventListener("DOMContentLoaded", markScrollers);
  document.addEventListener("htmx:afterSettle", markScrollers);
  window.addEventListener("resize", markScrollers);

  // The grants matrix is one tab stop: its toggles are a grid the arrow
  // keys move through (Home and End to a row's ends), and Tab leaves it.
  // The toggle last focused keeps the stop, across htmx swaps of a cell.
  var TOGGLES = "button.cell-on, button.cell-off";
  function matrixGrid(table) {
    var grid = [];
    var rows = table.tBodies.length ? table.tBodies[0].rows : [];
    for (var r = 0; r < rows.length; r++) {
      grid.push(Array.prototype.slice.call(rows[r].querySelectorAll(TOGGLES)));
    }
    return grid;
  }
  function rove(table, keep) {
    var all = table.querySelectorAll(TOGGLES);
    if (!all.length) {
      return;
    }
    if (!keep || !table.contains(keep)) {
      keep = table.querySelector("button[data-stop]") || all[0];
    }
    for (var i = 0; i < all.length; i++) {
      all[i].tabIndex = all[i] === keep ? 0 : -1;
      all[i].removeAttribute("data-stop");
    }
    keep.setAttribute("data-stop", "");
  }
  function roveAll() {
    var tables = document.querySelectorAll("table.matrix");
    for (var i = 0; i < tables.length; i++) {
      var active = document.activeElement;
      rove(tables[i], active && active.matches && active.matches(TOGGLES) ? active : null);
    }
  }
  document.addEventListener("DOMContentLoaded", roveAll);
  document.addEventListener("htmx:afterSettle", roveAll);
  document.addEventListener("focusin", function (e) {
    var t = e.target;
    if (t.matches && t.matches(TOGGLES) && t.closest("table.matrix")) {
      rove(t.closest("table.matrix"), t);
    }
  });
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (!t.matches || !t.matches(TOGGLES) || e.altKey || e.ctrlKey || e.metaKey) {
      return;
    }
    var table = t.closest("table.matrix");
    if (!table) {
      return;
    }
    var grid = matrixGrid(table);
    for (var r = 0; r < grid.length; r++) {
      var c = grid[r].indexOf(t);
      if (c < 0) {
        continue;
      }
      var nr = r, nc = c;
      switch (e.key) {
        case "ArrowRight": nc = c + 1; break;
        case "ArrowLeft": nc = c - 1; break;
        case "ArrowDown": nr = r + 1; break;
        case "ArrowUp": nr = r - 1; break;
        case "Home": nc = 0; break;
        case "End": nc = grid[r].length - 1; break;
        default: return;
      }
      e.preventDefault();
      var next = grid[nr] && grid[nr][nc];
      if (next) {
        rove(table, next);
        next.focus();
      }
      return;
    }
  });

  // Copy buttons (data-copy names what to copy, one line per list item);
  // hidden without JavaScript, where the list can be selected instead.
  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("[data-copy]");
    for (var i = 0; i < buttons.length; i++) {
      if (navigator.clipboard) {
        buttons[i].hidden = false;
      }
    }
  });
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-copy]");
    if (!button) {
      return;
    }
    var source = document.querySelector(button.getAttribute("data-copy"));
    var status = button.parentNode.querySelector("[data-copy-status]");
    var items = source ? source.querySelectorAll("li") : [];
    var lines = [];
    for (var i = 0; i < items.length; i++) {
      lines.push(items[i].textContent.trim());
    }
    // A list is copied a line per item; anything else (a token) as it is.
    var text = lines.join("\n") + "\n";
    var done = "Copied " + lines.length + " codes.";
    var failed = "Could not copy: select the codes instead.";
    if (items.length === 0 && source) {
      text = source.textContent.trim();
      done = "Copied.";
      failed = "Could not copy: select it instead.";
    }
    navigator.clipboard.writeText(text).then(function () {
      if (status) {
        status.textContent = done;
      }
    }, function () {
      if (status) {
        status.textContent = failed;
      }
    });
  });

  var swappedFocus = null; // id of the swap target that held the focus
  function holdsFocus(el) {
    var active = document.activeElement;
    return !!el && active && active !== document.body && el.contains(active);
  }
  // An action (a POST) was started from a control in its form: the focus
  // belongs in the swapped-in result, even if it left the control while
  // the request ran.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var cfg = e.detail.requestConfig;
    var target = e.detail.target;
    if (cfg && cfg.verb === "post" && target && target.id && (holdsFocus(e.detail.elt) || holdsFocus(target) || !document.activeElement || document.activeElement === document.body)) {
      swappedFocus = target.id;
    }
  });
  document.addEventListener("htmx:beforeSwap", function (e) {
    var target = e.detail.target;
    if (holdsFocus(target) && target.id) {
      swappedFocus = target.id;
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    var id = swappedFocus;
    swappedFocus = null;
    var active = document.activeElement;
    if (!id || (active && active !== document.body && active.isConnected)) {
      return;
    }
    var el = document.getElementById(id);
    if (!el) {
      return;
    }
    // A notice meant to take the focus, if htmx did not get to it.
    var wanted = el.querySelector("[autofocus]");
    if (wanted) {
      el = wanted;
    }
    if (el.tabIndex < 0 && !el.hasAttribute("tabindex")) {
      el.setAttribute("tabindex", "-1");
    }
    el.focus({ preventScroll: true });
  });
})();
