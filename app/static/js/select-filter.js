// A searchable multi-select: <select multiple data-filter="placeholder"> gets a search box above it that hides the
// options whose text does not contain what is typed, a count of the chosen ones, and the chosen ones as buttons
// (click one to unselect it). A click on an option toggles it without Ctrl. Without script the native select works.
(function () {
  "use strict";
  function enhance(select) {
    var bar = document.createElement("div");
    bar.className = "select-filter";
    var search = document.createElement("input");
    search.type = "search";
    search.placeholder = select.dataset.filter;
    search.setAttribute("aria-label", (select.labels && select.labels[0] ? select.labels[0].textContent.replace("*", "").trim() : "") + "：筛选");
    search.setAttribute("aria-controls", select.id);
    var count = document.createElement("span");
    count.className = "chosen";
    count.setAttribute("aria-live", "polite");
    bar.appendChild(search);
    bar.appendChild(count);
    select.parentNode.insertBefore(bar, select);
    var chips = document.createElement("ul");
    chips.className = "select-chips";
    chips.setAttribute("aria-label", "已选");
    select.insertAdjacentElement("afterend", chips);
    function refresh() {
      var chosen = Array.prototype.filter.call(select.options, function (o) { return o.selected; });
      count.textContent = "已选 " + chosen.length + " 项";
      chips.innerHTML = "";
      chosen.forEach(function (o) {
        var li = document.createElement("li"), b = document.createElement("button");
        b.type = "button";
        b.textContent = o.textContent + " ×";
        b.setAttribute("aria-label", "取消选择 " + o.textContent);
        b.addEventListener("click", function () { o.selected = false; refresh(); });
        li.appendChild(b);
        chips.appendChild(li);
      });
    }
    search.addEventListener("input", function () {
      var words = search.value.trim().toLowerCase();
      Array.prototype.forEach.call(select.options, function (o) {
        o.hidden = words !== "" && o.textContent.toLowerCase().indexOf(words) < 0 && !o.selected;
      });
    });
    search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); }  // searching never sends the form
    });
    select.addEventListener("mousedown", function (event) {
      var option = event.target;
      if (!(option instanceof HTMLOptionElement) || event.ctrlKey || event.metaKey || event.shiftKey) { return; }
      event.preventDefault();
      option.selected = !option.selected;
      select.focus();
      refresh();
    });
    select.addEventListener("change", refresh);
    refresh();
  }
  document.querySelectorAll("select[multiple][data-filter]").forEach(enhance);
})();
