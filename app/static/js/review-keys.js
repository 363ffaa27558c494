// Keyboard shortcuts of the 审核 page (shown on the page, #shortcuts): A selects 审核通过, R selects 审核不通过
// and moves to 审核意见, N opens 下一条, Ctrl+Enter sends the decision. Letters act only outside text fields.
(function () {
  "use strict";
  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) && target.type !== "radio");
  }
  function choose(form, value) {
    var radio = form && form.querySelector('input[name="decision"][value="' + value + '"]');
    if (radio) { radio.checked = true; radio.dispatchEvent(new Event("change", { bubbles: true })); }
    return radio;
  }
  document.addEventListener("keydown", function (event) {
    var form = document.querySelector("form[data-review-keys]");
    if (form && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit(form.querySelector('button[value="queue"]'));
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var key = event.key.toLowerCase();
    if (key === "a" && choose(form, "approve")) {
      event.preventDefault();
    } else if (key === "r" && choose(form, "reject")) {
      event.preventDefault();
      var comment = form.querySelector('[name="comment"]');
      if (comment) { comment.focus(); }
    } else if (key === "n") {
      var next = document.getElementById("next-link");
      if (next) { event.preventDefault(); window.location.assign(next.href); }
    }
  });
})();
