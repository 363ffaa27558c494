// Keeps what was typed into a long form in this browser tab (sessionStorage) until the server has stored it, so
// that a lost session (expired login or form token) or a reload loses nothing:
//   <form data-keep-form="/path" [data-restore]>  copies every change; data-restore (a freshly opened form) puts a
//                                                 kept copy back and says so
//   <div data-form-saved="/path">                 the server stored the form sent from /path: forget the copy
//   <a data-forget-form>                          leaving the form on purpose (取消) forgets the copy
// Any other page reminds the clerk of a kept copy with a link back to its form.
(function () {
  "use strict";
  var PREFIX = "xpilot-form:";
  var store;
  try { store = window.sessionStorage; } catch (e) { return; }
  if (!store) { return; }

  document.querySelectorAll("[data-form-saved]").forEach(function (el) {
    store.removeItem(PREFIX + el.dataset.formSaved);
  });

  function snapshot(form) {
    var data = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name === "csrf_token" || el.name === "action" || el.type === "submit" || el.type === "button") { return; }
      if (el.type === "radio" || el.type === "checkbox") {
        if (el.checked) { (data[el.name] = data[el.name] || []).push(el.value); }
      } else if (el.tagName === "SELECT" && el.multiple) {
        data[el.name] = Array.prototype.filter.call(el.options, function (o) { return o.selected; })
          .map(function (o) { return o.value; });
      } else {
        data[el.name] = [el.value];
      }
    });
    return data;
  }

  function restore(form, data) {
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || !Object.prototype.hasOwnProperty.call(data, el.name) || el.name === "csrf_token") { return; }
      var values = data[el.name];
      if (el.type === "radio" || el.type === "checkbox") {
        el.checked = values.indexOf(el.value) >= 0;
      } else if (el.tagName === "SELECT") {
        Array.prototype.forEach.call(el.options, function (o) { o.selected = values.indexOf(o.value) >= 0; });
      } else if (el.type !== "file" && el.type !== "submit") {
        el.value = values[0] || "";
      }
    });
  }

  var form = document.querySelector("form[data-keep-form]");
  var key = form ? PREFIX + form.dataset.keepForm : null;
  if (form) {
    var kept = store.getItem(key);
    if (kept && form.hasAttribute("data-restore")) {
      try {
        var saved = JSON.parse(kept);
        if (JSON.stringify(saved.data) !== JSON.stringify(snapshot(form))) {
          restore(form, saved.data);
          var note = document.createElement("div");
          note.className = "flash info restored";
          note.setAttribute("role", "status");
          note.id = "form-restored";
          note.textContent = "已恢复您上次在本浏览器中填写但尚未保存的内容，请检查后再保存或提交。";
          var clear = document.createElement("button");
          clear.type = "button";
          clear.className = "btn link";
          clear.textContent = "放弃这些内容";
          clear.addEventListener("click", function () { store.removeItem(key); window.location.reload(); });
          note.appendChild(document.createTextNode(" "));
          note.appendChild(clear);
          form.parentNode.insertBefore(note, form);
        }
      } catch (e) { store.removeItem(key); }
    }
    var keep = function () {
      store.setItem(key, JSON.stringify({title: document.title.split(" - ")[0], data: snapshot(form)}));
    };
    form.addEventListener("input", keep);
    form.addEventListener("change", keep);
    form.addEventListener("submit", keep, true);
    document.querySelectorAll("[data-forget-form]").forEach(function (a) {
      a.addEventListener("click", function () { store.removeItem(key); });
    });
  }

  // Elsewhere (the login page after an expired session, the dashboard): point back to the kept form.
  var main = document.getElementById("main");
  if (!main || !document.querySelector("header.top nav a")) { return; }
  for (var i = 0; i < store.length; i++) {
    var name = store.key(i);
    if (!name || name.indexOf(PREFIX) !== 0 || name === key) { continue; }
    var path = name.slice(PREFIX.length);
    var title = "表单";
    try { title = JSON.parse(store.getItem(name)).title || title; } catch (e) { continue; }
    var banner = document.createElement("div");
    banner.className = "flash warning";
    banner.setAttribute("role", "status");
    banner.id = "form-kept";
    banner.appendChild(document.createTextNode("您在“" + title + "”中填写的内容尚未保存，已保留在本浏览器中。"));
    var link = document.createElement("a");
    link.href = path;
    link.textContent = "继续填写";
    banner.appendChild(link);
    main.insertBefore(banner, main.firstChild);
    break;
  }
})();
