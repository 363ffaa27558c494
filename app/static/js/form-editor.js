/*
 * X-Pilot form editor, beside the process editor: lists the forms of the draft (those the diagram's user tasks
 * fill, then the version's others), edits one form as a list of fields that writes JSON Schema in the dialect the
 * app renders (app/forms: x-widget, x-enum-labels), with the raw JSON for anything else, and shows a live preview
 * rendered by the server exactly as schools and staff will see the form.
 *
 * Plain JavaScript, no library: the generic JSON-Schema form builders do not know our dialect, and the preview must
 * come from the server's own renderer. The draft's forms are kept as JSON in the check form's #xp-forms field, so
 * 校验 and 发布 send them with the diagram; each change fires "xp-forms-changed" for process-editor.js.
 */
(function () {
  "use strict";

  var store = document.getElementById("xp-forms");
  var card = document.getElementById("xp-forms-card");
  var configNode = document.getElementById("xp-diagram-config");
  if (!store || !card || !configNode) return;
  var config = JSON.parse(configNode.textContent);
  var listNode = document.getElementById("xp-forms-list");
  var editorNode = document.getElementById("xp-form-editor");
  var previewForm = document.getElementById("xp-form-preview");
  var previewBody = document.getElementById("xp-form-preview-body");
  var tryButton = document.getElementById("xp-form-try");
  var csrfNode = document.querySelector("#xp-check-form input[name=csrf_token]");

  var KINDS = [
    ["text", "文字（单行）"], ["textarea", "文字（多行）"], ["integer", "整数"], ["number", "数字"],
    ["boolean", "是/否（勾选）"], ["date", "日期"], ["select", "单选（下拉列表）"], ["radio", "单选（按钮）"]
  ];
  var FIELD_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
  var FORM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\.json$/;

  var forms;
  try { forms = JSON.parse(store.value || "{}"); } catch (err) { forms = {}; }
  var current = null;
  var usage = {};  // form file name -> titles of the user tasks that fill it
  var seq = 0;

  function node(tag, className, text) {
    var n = document.createElement(tag);
    if (className) n.className = className;
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function button(text, onClick, className) {
    var b = node("button", className || "btn secondary", text);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }

  function labelled(label, control, help) {
    var wrap = node("div", "field");
    control.id = control.id || "xp-form-field-" + (++seq);
    var l = node("label", "", label);
    l.htmlFor = control.id;
    wrap.appendChild(l);
    wrap.appendChild(control);
    if (help) wrap.appendChild(node("div", "help", help));
    return wrap;
  }

  function input(value, onInput, type) {
    var i = node("input");
    i.type = type || "text";
    i.value = value === undefined || value === null ? "" : String(value);
    i.addEventListener("input", function () { onInput(i.value); });
    return i;
  }

  function say(text, kind) {
    var n = document.getElementById("xp-forms-message");
    if (!n) return;
    n.textContent = text || "";
    n.className = "xp-message " + (kind === "error" ? "error-text" : "muted");
  }

  // ---- the store and the diagram's use of forms

  function save() {
    store.value = JSON.stringify(forms);
    document.dispatchEvent(new CustomEvent("xp-forms-changed"));
    var raw = document.getElementById("xp-form-json");
    if (raw && current && document.activeElement !== raw) raw.value = JSON.stringify(forms[current], null, 2);
    schedulePreview();
  }

  function readUsage() {
    usage = {};
    var modeler = window.xpModeler;
    if (!modeler) return;
    modeler.get("elementRegistry").filter(function (e) { return e.type === "bpmn:UserTask"; }).forEach(function (e) {
      var bo = e.businessObject;
      var ext = bo.extensionElements && (bo.extensionElements.values || []).find(function (v) {
        return v.$instanceOf("spiffworkflow:Properties");
      });
      var prop = ext && (ext.properties || []).find(function (p) { return p.name === "formJsonSchemaFilename"; });
      if (prop && prop.value) (usage[prop.value] = usage[prop.value] || []).push(bo.name || e.id);
    });
  }

  // ---- the list of forms

  function renderList() {
    listNode.textContent = "";
    var used = Object.keys(usage).sort();
    var others = Object.keys(forms).filter(function (n) { return !usage[n]; }).sort();
    listNode.appendChild(node("h3", "", "流程图使用的表单"));
    var ul = node("ul", "xp-form-names");
    if (!used.length) ul.appendChild(node("li", "muted", "图中的用户任务还没有指定表单"));
    used.forEach(function (name) {
      var li = node("li");
      if (forms[name]) {
        li.appendChild(pick(name));
      } else {
        li.appendChild(node("code", "error-text", name));
        li.appendChild(document.createTextNode("（不存在）"));
        li.appendChild(button("创建此表单", function () { create(name, ""); }, "btn link"));
      }
      li.appendChild(node("div", "help", "任务：" + usage[name].join("、")));
      ul.appendChild(li);
    });
    listNode.appendChild(ul);
    listNode.appendChild(node("h3", "", "本版本的其他表单"));
    var ul2 = node("ul", "xp-form-names");
    if (!others.length) ul2.appendChild(node("li", "muted", "无"));
    others.forEach(function (name) { var li = node("li"); li.appendChild(pick(name)); ul2.appendChild(li); });
    listNode.appendChild(ul2);

    var box = node("fieldset", "xp-section");
    box.appendChild(node("legend", "", "新建表单"));
    var nameInput = input("", function () {});
    nameInput.placeholder = "如 expert-review.json";
    nameInput.setAttribute("data-key", "new-form-name");
    var titleInput = input("", function () {});
    titleInput.placeholder = "如 专家评审";
    titleInput.setAttribute("data-key", "new-form-title");
    box.appendChild(labelled("文件名", nameInput));
    box.appendChild(labelled("表单标题", titleInput));
    box.appendChild(button("新建表单", function () { create(nameInput.value.trim(), titleInput.value.trim()); }));
    listNode.appendChild(box);
  }

  function pick(name) {
    var b = button(name, function () { select(name); }, "btn link xp-form-pick" + (name === current ? " xp-current-form" : ""));
    b.setAttribute("data-form", name);
    if (name === current) b.setAttribute("aria-current", "true");
    return b;
  }

  function create(name, title) {
    if (!name) { say("请填写新表单的文件名", "error"); return; }
    if (!/\.json$/.test(name)) name += ".json";
    if (!FORM_NAME.test(name) || name.indexOf("..") >= 0) {
      say("文件名只能用英文字母、数字、点、下划线和连字符，以 .json 结尾（如 expert-review.json）", "error");
      return;
    }
    if (forms[name]) { say("已有名为 " + name + " 的表单：请换一个文件名，或在列表中点击它进行修改", "error"); return; }
    forms[name] = { "$schema": "https://json-schema.org/draft/2020-12/schema", "title": title || name.replace(/\.json$/, ""),
                    "type": "object", "required": [], "properties": {} };
    say("已新建表单 " + name + "：请添加字段，并在图中用户任务的“表单文件”中选择它", "info");
    current = name;
    save();
    render();
  }

  function select(name) {
    current = name;
    say("");
    render();
    schedulePreview();
  }

  // ---- one form: its title, its fields, its JSON

  function kindOf(prop) {
    if (prop.type === "array" || prop["x-options"]) return "";
    if (prop.enum) return prop["x-widget"] === "radio" ? "radio" : "select";
    if (prop.type === "integer" || prop.type === "number" || prop.type === "boolean") return prop.type;
    if (prop.format === "date") return "date";
    return prop["x-widget"] === "textarea" ? "textarea" : "text";
  }

  function setKind(prop, kind) {
    ["enum", "x-enum-labels", "x-widget", "format", "minLength", "maxLength", "minimum", "maximum"].forEach(function (k) {
      delete prop[k];
    });
    prop.type = { integer: "integer", number: "number", boolean: "boolean" }[kind] || "string";
    if (kind === "textarea") prop["x-widget"] = "textarea";
    if (kind === "date") prop.format = "date";
    if (kind === "select" || kind === "radio") {
      prop.enum = ["yes", "no"];
      prop["x-enum-labels"] = { yes: "是", no: "否" };
      prop["x-widget"] = kind;
    }
  }

  function setNumber(prop, key, text, integer) {
    var t = text.trim();
    if (t === "") { delete prop[key]; return true; }
    var v = Number(t);
    if (!isFinite(v) || (integer && Math.floor(v) !== v)) return false;
    prop[key] = v;
    return true;
  }

  function optionsText(prop) {
    var labels = prop["x-enum-labels"] || {};
    return (prop.enum || []).map(function (v) {
      var label = labels[String(v)];
      return label !== undefined && label !== String(v) ? v + "=" + label : String(v);
    }).join("\n");
  }

  function setOptions(prop, text) {
    var values = [], labels = {};
    text.split("\n").forEach(function (line) {
      line = line.trim();
      if (!line) return;
      var at = line.indexOf("=");
      var value = (at >= 0 ? line.slice(0, at) : line).trim();
      var label = (at >= 0 ? line.slice(at + 1) : value).trim();
      values.push(value);
      labels[value] = label || value;
    });
    prop.enum = values;
    prop["x-enum-labels"] = labels;
  }

  function render() {
    readUsage();
    renderList();
    editorNode.textContent = "";
    if (!current || !forms[current]) {
      editorNode.appendChild(node("p", "muted", "在左侧选择一个表单进行修改，或新建表单。"));
      previewBody.textContent = "";
      return;
    }
    var schema = forms[current];
    schema.properties = schema.properties || {};
    schema.required = schema.required || [];
    editorNode.appendChild(node("h3", "", "表单 " + current));
    if (usage[current]) editorNode.appendChild(node("p", "help", "由这些任务填写：" + usage[current].join("、")));
    var title = input(schema.title, function (v) { schema.title = v; save(); });
    title.setAttribute("data-key", "form-title");
    editorNode.appendChild(labelled("表单标题", title));

    var names = Object.keys(schema.properties);
    var list = node("ol", "xp-form-fields");
    names.forEach(function (name, index) { list.appendChild(renderField(schema, name, index, names.length)); });
    editorNode.appendChild(list);
    var actions = node("div", "actions");
    actions.appendChild(button("添加字段", function () { addField(schema); }));
    actions.appendChild(button("删除表单", function () {
      readUsage();
      if (usage[current]) {
        say("表单 " + current + " 正由这些任务使用，不能删除：" + usage[current].join("、") + "。请先在图中为它们改选表单", "error");
        return;
      }
      delete forms[current];
      say("已删除表单 " + current, "info");
      current = null;
      save();
      render();
    }, "btn danger"));
    editorNode.appendChild(actions);

    var raw = node("textarea", "xp-form-json");
    raw.id = "xp-form-json";
    raw.value = JSON.stringify(schema, null, 2);
    raw.spellcheck = false;
    var details = node("details", "xp-form-raw");
    details.appendChild(node("summary", "", "JSON（高级：可直接编辑，如 pattern、条件必填）"));
    details.appendChild(labelled("表单的 JSON Schema", raw));
    details.appendChild(button("应用 JSON", function () {
      var parsed;
      try { parsed = JSON.parse(raw.value); } catch (err) { say("JSON 格式错误：" + err.message + "，未应用", "error"); return; }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) { say("表单必须是一个 JSON 对象，未应用", "error"); return; }
      forms[current] = parsed;
      say("已应用 JSON", "info");
      save();
      render();
    }));
    editorNode.appendChild(details);
  }

  function addField(schema) {
    var n = Object.keys(schema.properties).length + 1;
    var name = "field" + n;
    while (schema.properties[name]) name = "field" + (++n);
    schema.properties[name] = { type: "string", title: "新字段" + n };
    save();
    render();
    var inputs = editorNode.querySelectorAll("input[data-key=field-name]");
    if (inputs.length) inputs[inputs.length - 1].focus();
  }

  function renameField(schema, from, to) {
    var props = {};
    Object.keys(schema.properties).forEach(function (k) { props[k === from ? to : k] = schema.properties[k]; });
    schema.properties = props;
    schema.required = schema.required.map(function (k) { return k === from ? to : k; });
  }

  function moveField(schema, name, by) {
    var keys = Object.keys(schema.properties);
    var i = keys.indexOf(name);
    keys.splice(i, 1);
    keys.splice(i + by, 0, name);
    var props = {};
    keys.forEach(function (k) { props[k] = schema.properties[k]; });
    schema.properties = props;
    save();
    render();
  }

  function renderField(schema, name, index, count) {
    var prop = schema.properties[name];
    var li = node("li", "xp-form-field");
    li.setAttribute("data-field", name);
    var row = node("div", "xp-form-row");
    var key = input(name, function () {});
    key.setAttribute("data-key", "field-name");
    key.addEventListener("change", function () {
      var to = key.value.trim();
      if (to === name) return;
      if (!FIELD_NAME.test(to)) {
        say("字段名只能用英文字母开头，由字母、数字和下划线组成：流程的表达式按字段名读取填写的值", "error");
        key.value = name;
        return;
      }
      if (schema.properties[to]) { say("表单中已有字段 " + to, "error"); key.value = name; return; }
      renameField(schema, name, to);
      say("");
      save();
      render();
    });
    row.appendChild(labelled("字段名", key, "表达式中用它读取填写的值"));
    var title = input(prop.title, function (v) { prop.title = v; save(); });
    title.setAttribute("data-key", "field-title");
    row.appendChild(labelled("标题", title));
    var kind = kindOf(prop);
    var kindSelect = node("select");
    kindSelect.setAttribute("data-key", "field-kind");
    (kind ? KINDS : KINDS.concat([["", "其他（在 JSON 中编辑）"]])).forEach(function (k) {
      var o = node("option", "", k[1]);
      o.value = k[0];
      if (k[0] === kind) o.selected = true;
      kindSelect.appendChild(o);
    });
    kindSelect.disabled = !kind;
    kindSelect.addEventListener("change", function () { setKind(prop, kindSelect.value); save(); render(); });
    row.appendChild(labelled("类型", kindSelect));
    li.appendChild(row);

    var row2 = node("div", "xp-form-row");
    var required = node("input");
    required.type = "checkbox";
    required.checked = schema.required.indexOf(name) >= 0;
    required.setAttribute("data-key", "field-required");
    required.addEventListener("change", function () {
      schema.required = schema.required.filter(function (k) { return k !== name; });
      if (required.checked) schema.required.push(name);
      save();
    });
    row2.appendChild(labelled("必填", required));
    var bounds = kind === "text" || kind === "textarea" ? [["minLength", "最少字数"], ["maxLength", "最多字数"]]
      : kind === "integer" || kind === "number" ? [["minimum", "最小值"], ["maximum", "最大值"]] : [];
    bounds.forEach(function (b) {
      var box = input(prop[b[0]], function (v) {
        var ok = setNumber(prop, b[0], v, b[0].indexOf("Length") > 0 || kind === "integer");
        box.setCustomValidity(ok ? "" : "请输入" + (kind === "number" && b[0].indexOf("Length") < 0 ? "数字" : "整数"));
        if (ok) save();
      });
      box.setAttribute("data-key", "field-" + b[0]);
      box.inputMode = "numeric";
      row2.appendChild(labelled(b[1], box));
    });
    li.appendChild(row2);
    if (kind === "select" || kind === "radio") {
      var options = node("textarea");
      options.value = optionsText(prop);
      options.setAttribute("data-key", "field-options");
      options.addEventListener("input", function () { setOptions(prop, options.value); save(); });
      li.appendChild(labelled("选项", options, "每行一项：值=显示文字，如 approve=同意。值保存在流程数据中供条件表达式使用，"
        + "显示文字（x-enum-labels）是填写的人看到的"));
    }
    var description = input(prop.description, function (v) {
      if (v) prop.description = v; else delete prop.description;
      save();
    });
    description.setAttribute("data-key", "field-description");
    li.appendChild(labelled("说明", description, "显示在字段下方的提示"));
    var actions = node("div", "actions xp-form-field-actions");
    var up = button("上移", function () { moveField(schema, name, -1); });
    up.disabled = index === 0;
    var down = button("下移", function () { moveField(schema, name, 1); });
    down.disabled = index === count - 1;
    actions.appendChild(up);
    actions.appendChild(down);
    actions.appendChild(button("删除字段", function () {
      delete schema.properties[name];
      schema.required = schema.required.filter(function (k) { return k !== name; });
      save();
      render();
    }, "btn danger"));
    li.appendChild(actions);
    return li;
  }

  // ---- the preview, rendered by the server

  var timer = null;
  var asked = 0;  // the newest preview request: an older answer arriving late is dropped

  function schedulePreview() {
    clearTimeout(timer);
    timer = setTimeout(function () { showPreview(false); }, 300);
  }

  function showPreview(tried) {
    if (!current || !forms[current]) return;
    var body = new FormData(tried ? previewForm : undefined);
    body.set("form_schema", JSON.stringify(forms[current]));
    body.set("form_try", tried ? "1" : "0");
    previewBody.setAttribute("aria-busy", "true");
    var mine = ++asked;
    fetch(config.previewUrl, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfNode ? csrfNode.value : "" }
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    }).then(function (html) {
      if (mine !== asked) return;
      // The fragment is the server's own template output, escaped there, with no scripts (the CSP allows none).
      previewBody.innerHTML = html;
      previewBody.setAttribute("aria-busy", "false");
      previewBody.setAttribute("data-previewing", current);
    }).catch(function (err) {
      if (mine !== asked) return;
      previewBody.setAttribute("aria-busy", "false");
      previewBody.textContent = "预览失败：" + (err && err.message || err);
    });
  }

  if (tryButton) tryButton.addEventListener("click", function () { showPreview(true); });
  if (previewForm) previewForm.addEventListener("submit", function (event) { event.preventDefault(); showPreview(true); });
  document.addEventListener("xp-diagram-changed", function () { readUsage(); renderList(); });

  readUsage();
  current = Object.keys(usage).sort().filter(function (n) { return forms[n]; })[0] || Object.keys(forms).sort()[0] || null;
  render();
  schedulePreview();
  card.setAttribute("data-ready", "true");
})();
