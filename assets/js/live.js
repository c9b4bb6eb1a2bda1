// Gatehouse's settings for idiomorph, htmx's morph swap (hx-swap="morph…").
// A file, not an inline script: the Content-Security-Policy allows only
// same-origin scripts. It runs after idiomorph-ext.min.js (both deferred).
//
// A panel refreshes every few seconds and the page fetches itself again
// when the viewer's access changes; neither may undo what the reader did:
//   - an open <details> (a chart's Data table) stays open;
//   - text typed into an input stays, and so does focus (idiomorph's own
//     restoreFocus, on by default);
//   - a panel that is already loaded keeps its content when the page around
//     it is morphed: its own poll refreshes it.
(function () {
  "use strict";
  if (typeof Idiomorph === "undefined") {
    return;
  }
  var defaults = Idiomorph.defaults;
  defaults.ignoreActiveValue = true;
  defaults.callbacks.beforeAttributeUpdated = function (name, elt, kind) {
    if (name === "open" && elt.tagName === "DETAILS") {
      return false;
    }
    if (name === "value" && kind === "remove" && (elt.tagName === "INPUT" || elt.tagName === "TEXTAREA")) {
      return false;
    }
    return true;
  };
  defaults.callbacks.beforeNodeMorphed = function (oldNode, newNode) {
    if (oldNode.nodeType === 1 && newNode.nodeType === 1 &&
        oldNode.classList.contains("panel-body") &&
        oldNode.hasAttribute("hx-get") &&
        oldNode.getAttribute("hx-get") === newNode.getAttribute("hx-get") &&
        oldNode.getAttribute("hx-trigger") === newNode.getAttribute("hx-trigger")) {
      return false;
    }
    return true;
  };
})();
