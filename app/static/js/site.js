// Behaviour shared by every page, attached from data- attributes (the content security policy forbids inline
// handlers):
//   <form data-confirm="确定…？">            asks before the form is sent
//   <input type="checkbox" data-check-all="CSS selector">  ticks or clears every checkbox the selector finds
//   <a href="#" data-history-back>           goes back one page
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
  document.addEventListener("click", function (event) {
    var back = event.target instanceof Element ? event.target.closest("[data-history-back]") : null;
    if (back) {
      event.preventDefault();
      window.history.back();
      return;
    }
    var box = event.target;
    if (!(box instanceof HTMLInputElement) || !box.dataset.checkAll) { return; }
    document.querySelectorAll(box.dataset.checkAll).forEach(function (other) { other.checked = box.checked; });
  });
})();
