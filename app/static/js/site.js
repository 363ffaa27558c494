// Behaviour shared by every page, attached from data- attributes (the content security policy forbids inline
// handlers):
//   <form data-confirm="确定…？">            asks before the form is sent
//   <input type="checkbox" data-check-all="CSS selector">  ticks or clears every checkbox the selector finds
//   <a href="#" data-history-back>           goes back one page
//   <button class="menu-toggle">             opens and closes the header menu on narrow screens
(function () {
  "use strict";
  var toggle = document.querySelector("header.top .menu-toggle");
  if (toggle) {
    var header = toggle.closest("header");
    header.classList.add("js-menu");
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var open = header.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      toggle.textContent = open ? "收起菜单" : "菜单";
    });
  }
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
