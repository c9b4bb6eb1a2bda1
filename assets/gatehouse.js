// Gatehouse's own script (no inline scripts: the Content-Security-Policy
// allows only files from /assets/). It does three things:
//
//  1. The colour theme: pages follow the system's prefers-color-scheme
//     until the person presses the theme button in the top bar, which
//     cycles system → the other theme → the system's theme → system; a
//     choice is remembered in localStorage. Loaded in <head> without
//     defer, so a remembered theme applies before the first paint.
//  2. On a phone, the admin sections' row scrolls its current one into view.
//  3. The keyboard focus through htmx swaps: htmx itself refocuses an
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
