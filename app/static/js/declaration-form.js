// The declaration form: 提交审核 asks for confirmation, and a sent form cannot be sent twice.
(function () {
  "use strict";
  var form = document.getElementById("declaration-form");
  if (!form) { return; }
  form.addEventListener("submit", function (e) {
    if (e.submitter && e.submitter.value === "submit" && !confirm("确认提交审核吗？提交后将不能再修改，只能等待审核结果。")) { e.preventDefault(); return; }
    for (const b of this.querySelectorAll("button[type=submit]")) { if (b !== e.submitter) b.disabled = true; }
    if (e.submitter) {
      const h = document.createElement("input"); h.type = "hidden"; h.name = "action"; h.value = e.submitter.value; this.appendChild(h);
      const submitter = e.submitter;
      setTimeout(() => { submitter.disabled = true; }, 0);
    }
  });
})();
