/*
 * The editor's 场景 panel: lists the scenarios of the process and scope, writes one (steps chosen from the draft's
 * user tasks, with the choices of their forms named by x-enum-labels; timers; the deadline passing), runs it on
 * the diagram as the editor holds it now, and saves it. Every answer is JSON from app/processes/scenario_views.py;
 * all text is set with textContent, never as markup.
 *
 * The page passes its settings as JSON in <script type="application/json" id="xp-scenario-config">.
 */
(function () {
  "use strict";

  var configNode = document.getElementById("xp-scenario-config");
  if (!configNode) return;
  var config = JSON.parse(configNode.textContent);
  var outline = config.outline;
  var scenarios = config.scenarios || [];
  var editing = null; // the saved scenario being edited (its id), or null for a new one

  var list = document.querySelector("#scenario-list tbody");
  var empty = document.getElementById("scenario-empty");
  var form = document.getElementById("sc-form");
  var formTitle = document.getElementById("sc-form-title");
  var nameInput = document.getElementById("sc-name");
  var stepsList = document.getElementById("sc-steps");
  var addKind = document.getElementById("sc-add-kind");
  var expectStatus = document.getElementById("sc-expect-status");
  var expectSms = document.getElementById("sc-expect-sms");
  var message = document.getElementById("sc-message");
  var result = document.getElementById("sc-result");
  var provinceSelect = document.getElementById("f-province");

  function node(tag, className, text) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined && text !== null) el.textContent = text;
    return el;
  }

  function say(text, kind) {
    message.textContent = text || "";
    message.className = "xp-message" + (kind ? " " + kind : "");
  }

  function option(value, label, selected) {
    var o = node("option", "", label);
    o.value = value;
    if (selected) o.selected = true;
    return o;
  }

  // ---- talking to the server: the draft as the editor holds it now, the scope, the scenario

  async function currentXml() {
    if (window.xpModeler) {
      try {
        return (await window.xpModeler.saveXML({ format: true })).xml;
      } catch (err) { /* fall back to the page's copy */ }
    }
    var field = document.getElementById("xp-xml");
    return field ? field.value : "";
  }

  function scope() {
    return provinceSelect ? provinceSelect.value : config.province;
  }

  async function post(url, extra) {
    var body = new URLSearchParams();
    body.set("csrf_token", document.getElementById("xp-scenario-csrf").value);
    body.set("xml", await currentXml());
    body.set("base_version_id", String(config.baseVersionId));
    body.set("province_code", scope());
    Object.keys(extra || {}).forEach(function (k) { body.set(k, extra[k]); });
    var response = await fetch(url, {
      method: "POST", credentials: "same-origin", body: body,
      headers: { "Accept": "application/json" }
    });
    var data;
    try {
      data = await response.json();
    } catch (err) {
      data = { error: "服务器没有返回结果（" + response.status + "），请稍后重试" };
    }
    data.ok = response.ok;
    return data;
  }

  function showRefusal(data) {
    var lines = [data.error || "操作未完成"];
    (data.problems || []).forEach(function (p) {
      lines.push((p.element_id ? p.element_id + (p.element_name ? "（" + p.element_name + "）" : "") + "：" : "") + p.message);
    });
    say(lines.join("\n"), "error");
  }

  // ---- the list

  function renderList() {
    list.textContent = "";
    empty.hidden = scenarios.length > 0;
    scenarios.forEach(function (s) {
      var row = node("tr");
      row.setAttribute("data-key", s.key);
      var name = node("td", "", s.name);
      if (s.builtin) name.appendChild(node("span", "muted", "（内置）"));
      row.appendChild(name);
      var steps = node("td");
      var ol = node("ol", "xp-step-names");
      (s.names.length ? s.names : s.steps.map(function () { return "（流程图有误，无法显示）"; })).forEach(function (n) {
        ol.appendChild(node("li", "", n));
      });
      steps.appendChild(ol);
      row.appendChild(steps);
      var expects = [];
      if (s.expect_status) expects.push("最终状态“" + s.expect_status + "”");
      if (s.expect_sms) expects.push("发送短信 " + s.expect_sms);
      row.appendChild(node("td", "", expects.length ? expects.join("；") : "运行不出错"));
      var actions = node("td", "actions");
      actions.appendChild(button("运行", "运行场景“" + s.name + "”", function () { runListed(s); }));
      if (!s.builtin) {
        actions.appendChild(button("编辑", "编辑场景“" + s.name + "”", function () { openForm(s); }));
        actions.appendChild(button("删除", "删除场景“" + s.name + "”", function () { remove(s); }));
      }
      row.appendChild(actions);
      list.appendChild(row);
    });
  }

  function button(text, label, onClick) {
    var b = node("button", "btn secondary", text);
    b.type = "button";
    b.setAttribute("aria-label", label);
    b.addEventListener("click", onClick);
    return b;
  }

  async function refresh() {
    var data = await post(config.urls.outline, {});
    if (!data.ok) {
      showRefusal(data);
      return false;
    }
    outline = data.outline;
    scenarios = data.scenarios;
    renderList();
    return true;
  }

  // ---- the form: steps chosen from the draft

  function targets() {
    var found = [];
    (outline.tasks || []).forEach(function (t) {
      found.push(["task:" + t.id, "办理“" + t.title + "”（" + t.lane + "）"]);
    });
    (outline.timers || []).forEach(function (t) { found.push(["timer:" + t.id, "定时器“" + t.title + "”到时"]); });
    found.push(["deadline", "期限已过（所有等待中的定时器到时）"]);
    return found;
  }

  function taskOf(id) {
    return (outline.tasks || []).find(function (t) { return t.id === id; });
  }

  function addStep(step) {
    var li = node("li", "xp-step");
    var index = stepsList.children.length + 1;
    var id = "sc-step-" + Date.now() + "-" + index;
    var head = node("div", "field");
    var label = node("label", "xp-step-label", "步骤");
    label.setAttribute("for", id);
    var select = node("select");
    select.id = id;
    select.className = "xp-step-target";
    var value = step.kind === "task" ? "task:" + step.task : step.kind === "timer" ? "timer:" + step.timer : "deadline";
    targets().forEach(function (t) { select.appendChild(option(t[0], t[1], t[0] === value)); });
    if (select.value !== value && step.kind) {
      select.insertBefore(option(value, "（图中已没有：" + (step.task || step.timer) + "）", true), select.firstChild);
    }
    head.appendChild(label);
    head.appendChild(select);
    head.appendChild(button("删除此步", "删除此步", function () { li.remove(); renumber(); }));
    li.appendChild(head);
    var fields = node("div", "xp-step-fields");
    li.appendChild(fields);
    function drawFields(values) {
      fields.textContent = "";
      var target = select.value;
      if (target.indexOf("task:") !== 0) return;
      var task = taskOf(target.slice(5));
      if (!task) return;
      task.fields.forEach(function (f) {
        var fid = id + "-" + f.name;
        var wrap = node("div", "field");
        var flabel = node("label", "", f.title);
        flabel.setAttribute("for", fid);
        wrap.appendChild(flabel);
        var input;
        if (f.options.length) {
          input = node("select");
          if (!f.required) input.appendChild(option("", "（不选）", false));
          f.options.forEach(function (o) { input.appendChild(option(o[0], o[1], String(values[f.name]) === o[0])); });
        } else {
          input = node("input");
          input.type = f.kind === "integer" || f.kind === "number" ? "number" : "text";
          input.placeholder = "留空则用示例值";
          if (values[f.name] !== undefined) input.value = String(values[f.name]);
        }
        input.id = fid;
        input.setAttribute("data-field", f.name);
        wrap.appendChild(input);
        fields.appendChild(wrap);
      });
    }
    select.addEventListener("change", function () { drawFields({}); });
    drawFields(step.values || {});
    stepsList.appendChild(li);
    renumber();
  }

  function renumber() {
    Array.prototype.forEach.call(stepsList.children, function (li, i) {
      li.querySelector(".xp-step-label").textContent = "第 " + (i + 1) + " 步";
    });
  }

  function fillChoices(select, first, values, chosen) {
    select.textContent = "";
    select.appendChild(option("", first, !chosen));
    values.forEach(function (v) { select.appendChild(option(v, v, v === chosen)); });
    if (chosen && values.indexOf(chosen) < 0) select.appendChild(option(chosen, chosen, true));
  }

  async function openForm(saved) {
    say("");
    if (!await refresh()) return;
    editing = saved ? Number(saved.key.split(":")[1]) : null;
    formTitle.textContent = saved ? "编辑场景“" + saved.name + "”" : "新建场景";
    nameInput.value = saved ? saved.name : "";
    stepsList.textContent = "";
    (saved ? saved.steps : []).forEach(addStep);
    addKind.textContent = "";
    targets().forEach(function (t) { addKind.appendChild(option(t[0], t[1], false)); });
    fillChoices(expectStatus, "（不检查）", outline.statuses || [], saved ? saved.expect_status : "");
    fillChoices(expectSms, "（不检查）", outline.templates || [], saved ? saved.expect_sms : "");
    form.hidden = false;
    nameInput.focus();
  }

  function written() {
    var steps = Array.prototype.map.call(stepsList.children, function (li) {
      var target = li.querySelector(".xp-step-target").value;
      if (target === "deadline") return { kind: "deadline" };
      if (target.indexOf("timer:") === 0) return { kind: "timer", timer: target.slice(6) };
      var values = {};
      li.querySelectorAll("[data-field]").forEach(function (input) {
        if (input.value !== "") values[input.getAttribute("data-field")] = input.value;
      });
      return { kind: "task", task: target.slice(5), values: values };
    });
    return { name: nameInput.value.trim(), steps: steps, expect_status: expectStatus.value,
             expect_sms: expectSms.value };
  }

  // ---- running and saving

  function renderRun(run, passed) {
    result.textContent = "";
    result.appendChild(node("h3", "", "运行结果：" + (run.name || "未命名场景")));
    if (passed) {
      result.appendChild(node("p", "xp-ok xp-run-passed", "场景通过"));
    } else {
      var box = node("div", "error-text xp-run-failures");
      box.setAttribute("role", "alert");
      box.appendChild(node("strong", "", "场景未通过："));
      var ul = node("ul");
      run.failures.forEach(function (f) { ul.appendChild(node("li", "", f)); });
      box.appendChild(ul);
      result.appendChild(box);
    }
    var table = node("table", "xp-run");
    table.id = "scenario-run";
    var head = node("tr");
    ["步骤", "经过", "状态", "等待办理", "将发送的短信", "数据"].forEach(function (h) { head.appendChild(node("th", "", h)); });
    var thead = node("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    var body = node("tbody");
    run.steps.forEach(function (s) {
      var tr = node("tr");
      tr.appendChild(node("td", "xp-run-action", s.action));
      tr.appendChild(node("td", "xp-run-path", s.path.join(" → ")));
      var status = node("td");
      if (s.status) status.appendChild(node("span", "status s-" + s.status, s.status));
      tr.appendChild(status);
      var waiting = node("td", "", s.waiting_for.join("；"));
      if (s.error) waiting.appendChild(node("div", "error-text", s.error));
      tr.appendChild(waiting);
      var sms = node("td", "xp-run-sms");
      s.messages.forEach(function (m) {
        var box = node("div", "xp-sms");
        box.appendChild(node("code", "", m.template));
        box.appendChild(document.createTextNode(" → " + m.phone));
        box.appendChild(node("div", "", m.text));
        sms.appendChild(box);
      });
      tr.appendChild(sms);
      var data = node("td");
      var details = node("details");
      details.appendChild(node("summary", "", Object.keys(s.data).length + " 项"));
      var dl = node("dl", "xp-data");
      Object.keys(s.data).forEach(function (k) {
        dl.appendChild(node("dt", "", k));
        var v = s.data[k];
        dl.appendChild(node("dd", "", typeof v === "string" ? v : JSON.stringify(v)));
      });
      details.appendChild(dl);
      data.appendChild(details);
      tr.appendChild(data);
      body.appendChild(tr);
    });
    table.appendChild(body);
    result.appendChild(table);
  }

  async function run(payload) {
    say("正在运行…");
    result.textContent = "";
    var data = await post(config.urls.run, { scenario: JSON.stringify(payload) });
    if (!data.ok) {
      showRefusal(data);
      return;
    }
    say(data.passed ? "运行完成：场景通过" : "运行完成：场景未通过", data.passed ? "" : "error");
    renderRun(data.run, data.passed);
  }

  function runListed(s) {
    run({ key: s.key });
  }

  async function save() {
    var extra = { scenario: JSON.stringify(written()) };
    if (editing !== null) extra.scenario_id = String(editing);
    var data = await post(config.urls.save, extra);
    if (!data.ok) {
      showRefusal(data);
      return;
    }
    scenarios = data.scenarios;
    renderList();
    form.hidden = true;
    editing = null;
    say(data.message);
  }

  async function remove(s) {
    if (!window.confirm("确定删除场景“" + s.name + "”？删除后发布时不再运行它。")) return;
    var url = config.deleteUrl.replace(/\/0\/delete$/, "/" + s.key.split(":")[1] + "/delete");
    var data = await post(url, {});
    if (!data.ok) {
      showRefusal(data);
      return;
    }
    scenarios = data.scenarios;
    renderList();
    say(data.message);
  }

  document.getElementById("sc-new").addEventListener("click", function () { openForm(null); });
  document.getElementById("sc-add").addEventListener("click", function () {
    var target = addKind.value;
    if (target === "deadline") addStep({ kind: "deadline" });
    else if (target.indexOf("timer:") === 0) addStep({ kind: "timer", timer: target.slice(6) });
    else addStep({ kind: "task", task: target.slice(5), values: {} });
  });
  document.getElementById("sc-run").addEventListener("click", function () { run(written()); });
  document.getElementById("sc-save").addEventListener("click", save);
  document.getElementById("sc-cancel").addEventListener("click", function () {
    form.hidden = true;
    editing = null;
    say("");
  });
  if (provinceSelect) provinceSelect.addEventListener("change", function () {
    var scopeName = document.getElementById("scenario-scope");
    if (scopeName) scopeName.textContent = provinceSelect.options[provinceSelect.selectedIndex].text;
    form.hidden = true;
    refresh();
  });

  if (!outline) say("编辑器中的流程图有误，修正后才能编写和运行场景（点击“新建场景”可重新读取）。", "error");
  renderList();
  document.getElementById("scenarios").setAttribute("data-ready", "true");
})();
