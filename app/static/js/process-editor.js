/*
 * X-Pilot process diagrams, on the bpmn-js UMD bundles (global BpmnJS): a viewer that marks the path an
 * instance took and the task it waits at, and the modeler with a small side panel for the spiffworkflow
 * extension elements our engine reads (forms, status, service operations and parameters, conditions,
 * lanes named by role codes). Every edit goes through bpmn-js's modeling API, so undo and redo work.
 *
 * The page passes its settings as JSON in <script type="application/json" id="xp-diagram-config">.
 */
(function () {
  "use strict";

  var SPIFF = "spiffworkflow";
  var TYPE_LABELS = {
    "bpmn:UserTask": "用户任务", "bpmn:ServiceTask": "服务任务", "bpmn:Task": "任务", "bpmn:ScriptTask": "脚本任务（不允许）",
    "bpmn:SequenceFlow": "顺序流", "bpmn:Lane": "泳道", "bpmn:Participant": "池（流程）",
    "bpmn:ExclusiveGateway": "排他网关", "bpmn:ParallelGateway": "并行网关", "bpmn:InclusiveGateway": "包容网关",
    "bpmn:StartEvent": "开始事件", "bpmn:EndEvent": "结束事件", "bpmn:IntermediateCatchEvent": "中间捕获事件",
    "bpmn:IntermediateThrowEvent": "中间抛出事件", "bpmn:BoundaryEvent": "边界事件", "bpmn:SubProcess": "子流程"
  };
  var PARAM_TYPES = ["str", "int", "float", "bool", "dict", "list"];

  var configNode = document.getElementById("xp-diagram-config");
  var container = document.getElementById("xp-canvas");
  var messageNode = document.getElementById("xp-message");
  if (!configNode || !container) return;
  var config = JSON.parse(configNode.textContent);

  function say(text, kind) {
    if (!messageNode) return;
    messageNode.textContent = text || "";
    messageNode.className = "xp-message " + (kind === "error" ? "error-text" : "muted");
  }

  function node(tag, className, text) {
    var n = document.createElement(tag);
    if (className) n.className = className;
    if (text !== undefined) n.textContent = text;
    return n;
  }

  if (typeof window.BpmnJS !== "function") {
    say("流程图组件没有载入（static/vendor/bpmn-js）。", "error");
    return;
  }

  if (config.mode === "viewer") {
    view();
  } else {
    edit().catch(function (err) { say("编辑器载入失败：" + (err && err.message || err), "error"); });
  }

  // -- viewer -----------------------------------------------------------------------------------

  function view() {
    var viewer = new window.BpmnJS({ container: container });
    window.xpDiagram = viewer;
    viewer.importXML(config.xml).then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      canvas.zoom("fit-viewport", "auto");
      var done = new Set(config.completed || []);
      var current = new Set(config.current || []);
      done.forEach(function (id) {
        if (registry.get(id) && !current.has(id)) canvas.addMarker(id, "xp-done");
      });
      current.forEach(function (id) { if (registry.get(id)) canvas.addMarker(id, "xp-current"); });
      registry.filter(function (e) { return e.type === "bpmn:SequenceFlow"; }).forEach(function (flow) {
        var from = flow.source && flow.source.id, to = flow.target && flow.target.id;
        if (done.has(from) && (done.has(to) || current.has(to))) canvas.addMarker(flow.id, "xp-done");
      });
      container.setAttribute("data-ready", "true");
    }).catch(function (err) {
      say("流程图无法显示：" + (err && err.message || err), "error");
    });
  }

  // -- modeler ----------------------------------------------------------------------------------

  async function edit() {
    var response = await fetch(config.moddleUrl, { credentials: "same-origin" });
    var descriptor = await response.json();
    var modeler = new window.BpmnJS({ container: container, moddleExtensions: { spiffworkflow: descriptor } });
    window.xpModeler = modeler;
    var modeling = modeler.get("modeling");
    var moddle = modeler.get("moddle");
    var selection = modeler.get("selection");
    var registry = modeler.get("elementRegistry");
    var commandStack = modeler.get("commandStack");
    var canvas = modeler.get("canvas");
    var eventBus = modeler.get("eventBus");
    var panel = document.getElementById("xp-panel");
    var seq = 0;

    try {
      await modeler.importXML(config.xml);
    } catch (err) {
      say("这份流程图无法在编辑器中打开（" + (err && err.message || err) + "），已改为打开底稿。", "error");
      await modeler.importXML(config.fallbackXml);
    }
    canvas.zoom("fit-viewport", "auto");
    (config.problems || []).forEach(function (id) { if (registry.get(id)) canvas.addMarker(id, "xp-problem"); });

    // ---- extension element helpers (each change is exactly one command, so one undo step)

    function extensionOf(bo, type) {
      var ext = bo.extensionElements;
      return ext && (ext.values || []).find(function (v) { return v.$instanceOf(type); }) || null;
    }

    function addExtension(element, child) {
      var bo = element.businessObject;
      var ext = bo.extensionElements;
      if (!ext) {
        ext = moddle.create("bpmn:ExtensionElements", { values: [child] });
        child.$parent = ext;
        ext.$parent = bo;
        modeling.updateProperties(element, { extensionElements: ext });
      } else {
        child.$parent = ext;
        modeling.updateModdleProperties(element, ext, { values: (ext.values || []).concat([child]) });
      }
    }

    function removeExtension(element, child) {
      var ext = element.businessObject.extensionElements;
      modeling.updateModdleProperties(element, ext, {
        values: (ext.values || []).filter(function (v) { return v !== child; })
      });
    }

    function propertyValue(bo, name) {
      var props = extensionOf(bo, SPIFF + ":Properties");
      var prop = props && (props.properties || []).find(function (p) { return p.name === name; });
      return prop ? prop.value || "" : "";
    }

    function setProperty(element, name, value) {
      var props = extensionOf(element.businessObject, SPIFF + ":Properties");
      var list = props ? props.properties || [] : [];
      var prop = list.find(function (p) { return p.name === name; });
      if (!value) {
        if (prop) modeling.updateModdleProperties(element, props, {
          properties: list.filter(function (p) { return p !== prop; })
        });
        return;
      }
      if (prop) {
        modeling.updateModdleProperties(element, prop, { value: value });
        return;
      }
      prop = moddle.create(SPIFF + ":Property", { name: name, value: value });
      if (props) {
        prop.$parent = props;
        modeling.updateModdleProperties(element, props, { properties: list.concat([prop]) });
      } else {
        props = moddle.create(SPIFF + ":Properties", { properties: [prop] });
        prop.$parent = props;
        addExtension(element, props);
      }
    }

    function setOperation(element, name) {
      var operator = extensionOf(element.businessObject, SPIFF + ":ServiceTaskOperator");
      if (!name) {
        if (operator) removeExtension(element, operator);
        return;
      }
      if (operator) {
        modeling.updateModdleProperties(element, operator, { id: name });
        return;
      }
      var list = moddle.create(SPIFF + ":Parameters", { parameters: [] });
      operator = moddle.create(SPIFF + ":ServiceTaskOperator", {
        id: name, resultVariable: name + "_result", parameterList: list
      });
      list.$parent = operator;
      addExtension(element, operator);
    }

    function setParameter(element, operator, pid, changes) {
      var list = operator.parameterList;
      var params = list ? list.parameters || [] : [];
      var param = params.find(function (p) { return p.id === pid; });
      if (param && changes.value === "") {
        modeling.updateModdleProperties(element, list, { parameters: params.filter(function (p) { return p !== param; }) });
        return;
      }
      if (param) {
        modeling.updateModdleProperties(element, param, changes);
        return;
      }
      if (!changes.value) return;
      param = moddle.create(SPIFF + ":Parameter", { id: pid, type: changes.type || "str", value: changes.value });
      if (list) {
        param.$parent = list;
        modeling.updateModdleProperties(element, list, { parameters: params.concat([param]) });
      } else {
        list = moddle.create(SPIFF + ":Parameters", { parameters: [param] });
        param.$parent = list;
        list.$parent = operator;
        modeling.updateModdleProperties(element, operator, { parameterList: list });
      }
    }

    function setCondition(element, body) {
      var bo = element.businessObject;
      var condition = bo.conditionExpression;
      if (!body) {
        if (condition) modeling.updateProperties(element, { conditionExpression: undefined });
        return;
      }
      if (condition) {
        modeling.updateModdleProperties(element, condition, { body: body });
        return;
      }
      condition = moddle.create("bpmn:FormalExpression", { body: body });
      condition.$parent = bo;
      modeling.updateProperties(element, { conditionExpression: condition });
    }

    // ---- panel controls

    function field(label, control, help) {
      var wrap = node("div", "field");
      var id = "xp-field-" + (++seq);
      control.id = id;
      var labelNode = node("label", "", label);
      labelNode.htmlFor = id;
      wrap.appendChild(labelNode);
      wrap.appendChild(control);
      if (help) wrap.appendChild(node("div", "help", help));
      return wrap;
    }

    function textInput(key, value, onChange, multiline) {
      var input = document.createElement(multiline ? "textarea" : "input");
      if (!multiline) input.type = "text";
      input.value = value || "";
      input.setAttribute("data-key", key);
      input.addEventListener("change", function () { onChange(input.value.trim()); });
      return input;
    }

    function selectInput(key, options, value, onChange) {
      var select = document.createElement("select");
      select.setAttribute("data-key", key);
      var known = options.some(function (o) { return o[0] === (value || ""); });
      if (!known && value) options = options.concat([[value, value + "（未知）"]]);
      options.forEach(function (o) {
        var option = node("option", "", o[1]);
        option.value = o[0];
        if (o[0] === (value || "")) option.selected = true;
        select.appendChild(option);
      });
      select.addEventListener("change", function () { onChange(select.value); });
      return select;
    }

    function section(title) {
      var box = node("fieldset", "xp-section");
      box.appendChild(node("legend", "", title));
      return box;
    }

    function renderPanel() {
      var focused = document.activeElement && panel.contains(document.activeElement)
        ? document.activeElement.getAttribute("data-key") : null;
      panel.textContent = "";
      var selected = selection.get();
      var element = selected.length === 1 ? selected[0] : null;
      if (element && element.type === "label") element = element.labelTarget;
      if (!element || element.type === "bpmn:Process" || element.type === "bpmn:Collaboration") {
        panel.appendChild(node("h3", "", "属性"));
        panel.appendChild(node("p", "muted", "在图上选择一个元素（任务、连线、泳道…）以编辑它的属性。"));
        return;
      }
      var bo = element.businessObject;
      panel.appendChild(node("h3", "", TYPE_LABELS[element.type] || element.type.replace("bpmn:", "")));
      var idLine = node("p", "muted xp-element-id");
      idLine.appendChild(document.createTextNode("编号 "));
      idLine.appendChild(node("code", "", element.id));
      panel.appendChild(idLine);

      if (element.type === "bpmn:Lane") {
        var roles = (config.roles || []).map(function (r) { return [r.code, r.code + " · " + r.name]; });
        panel.appendChild(field("泳道角色", selectInput("lane", [["", "请选择"]].concat(roles), bo.name, function (v) {
          modeling.updateProperties(element, { name: v || undefined });
        }), "泳道名称就是角色代码：泳道中的用户任务由该角色办理。新角色请在“角色”页面添加。"));
      } else {
        panel.appendChild(field("名称", textInput("name", bo.name, function (v) {
          modeling.updateProperties(element, { name: v || undefined });
        })));
      }

      if (element.type === "bpmn:UserTask") {
        var forms = (config.forms || []).map(function (f) { return [f, f]; });
        panel.appendChild(field("表单文件", selectInput("form", [["", "请选择"]].concat(forms),
          propertyValue(bo, "formJsonSchemaFilename"), function (v) { setProperty(element, "formJsonSchemaFilename", v); }),
          "办理此任务时填写的表单（本版本自带的表单）"));
      }
      if (element.type === "bpmn:UserTask" || element.type === "bpmn:ServiceTask") {
        panel.appendChild(field("状态表达式", textInput("status", propertyValue(bo, "status"), function (v) {
          setProperty(element, "status", v);
        }), "到达此任务时学校看到的状态，如 '市级初审中'（文字需加引号），也可以是条件表达式"));
      }
      if (element.type === "bpmn:ServiceTask") renderService(element, bo);
      if (element.type === "bpmn:SequenceFlow") renderFlow(element, bo);

      if (focused) {
        var again = panel.querySelector('[data-key="' + focused + '"]');
        if (again) again.focus();
      }
    }

    function renderService(element, bo) {
      var operations = config.operations || {};
      var operator = extensionOf(bo, SPIFF + ":ServiceTaskOperator");
      var box = section("服务操作");
      var options = Object.keys(operations).map(function (name) {
        return [name, name + (operations[name].description ? " · " + operations[name].description : "")];
      });
      box.appendChild(field("操作", selectInput("operation", [["", "请选择"]].concat(options),
        operator ? operator.id : "", function (v) { setOperation(element, v); })));
      if (operator) {
        box.appendChild(field("结果变量", textInput("resultVariable", operator.resultVariable, function (v) {
          modeling.updateModdleProperties(element, operator, { resultVariable: v || undefined });
        })));
        var spec = operations[operator.id] || { required: [], optional: [] };
        var params = operator.parameterList ? operator.parameterList.parameters || [] : [];
        var names = spec.required.concat(spec.optional);
        params.forEach(function (p) { if (names.indexOf(p.id) < 0) names.push(p.id); });
        var table = node("div", "xp-params");
        names.forEach(function (pid) {
          var param = params.find(function (p) { return p.id === pid; });
          var row = node("div", "xp-param");
          var title = node("div", "xp-param-name");
          title.appendChild(node("code", "", pid));
          title.appendChild(document.createTextNode(
            spec.required.indexOf(pid) >= 0 ? "（必填）" : spec.optional.indexOf(pid) >= 0 ? "（可选）" : "（此操作不使用）"));
          row.appendChild(title);
          row.appendChild(field("类型", selectInput("ptype-" + pid, PARAM_TYPES.map(function (t) { return [t, t]; }),
            param ? param.type : "str", function (v) {
              if (param) setParameter(element, operator, pid, { type: v });
            })));
          row.appendChild(field("值表达式", textInput("pvalue-" + pid, param ? param.value : "", function (v) {
            setParameter(element, operator, pid, { value: v, type: param ? param.type : "str" });
          }), param ? "" : "未设置：填写后添加此参数"));
          table.appendChild(row);
        });
        box.appendChild(table);
        var add = node("div", "xp-param-add");
        var newName = textInput("new-param", "", function () {});
        add.appendChild(field("添加其他参数（参数名）", newName));
        var addButton = node("button", "btn secondary", "添加参数");
        addButton.type = "button";
        addButton.addEventListener("click", function () {
          var pid = newName.value.trim();
          if (/^[A-Za-z][A-Za-z0-9_]*$/.test(pid)) setParameter(element, operator, pid, { value: "''", type: "str" });
          else say("参数名须以字母开头，只含字母、数字和下划线", "error");
        });
        add.appendChild(addButton);
        box.appendChild(add);
        box.appendChild(node("p", "help", "值是表达式：变量名直接写（如 school_phone），文字要加引号（如 'review_approved'）。清空值即删除该参数。"));
      }
      panel.appendChild(box);
    }

    function renderFlow(element, bo) {
      var condition = bo.conditionExpression ? bo.conditionExpression.body || "" : "";
      panel.appendChild(field("条件表达式", textInput("condition", condition, function (v) {
        setCondition(element, v);
      }, true), "如 decision == 'approve'；留空表示无条件"));
      var source = element.source;
      if (source && /Gateway$/.test(source.type)) {
        var isDefault = source.businessObject.default === bo;
        var label = node("label", "xp-check");
        var box = document.createElement("input");
        box.type = "checkbox";
        box.checked = isDefault;
        box.setAttribute("data-key", "default");
        box.addEventListener("change", function () {
          modeling.updateProperties(source, { "default": box.checked ? bo : undefined });
        });
        label.appendChild(box);
        label.appendChild(document.createTextNode(" 默认流向（其他条件都不成立时走这条）"));
        panel.appendChild(label);
      }
    }

    // ---- toolbar, dirty state, problems, check and publish forms

    var undo = document.getElementById("xp-undo");
    var redo = document.getElementById("xp-redo");
    var dirtyNote = document.getElementById("xp-dirty");
    var publishButton = document.getElementById("xp-publish");
    var staleNote = document.getElementById("xp-stale");

    function refreshState() {
      var changed = commandStack.canUndo();
      if (undo) undo.disabled = !commandStack.canUndo();
      if (redo) redo.disabled = !commandStack.canRedo();
      if (dirtyNote) dirtyNote.textContent = changed ? "有尚未校验的修改" : "";
      if (publishButton) publishButton.disabled = changed;
      if (staleNote) staleNote.hidden = !changed;
    }

    if (undo) undo.addEventListener("click", function () { commandStack.undo(); });
    if (redo) redo.addEventListener("click", function () { commandStack.redo(); });
    eventBus.on("selection.changed", renderPanel);
    eventBus.on("commandStack.changed", function () { renderPanel(); refreshState(); });

    var exportButton = document.getElementById("xp-export");
    if (exportButton) exportButton.addEventListener("click", async function () {
      var result = await modeler.saveXML({ format: true });
      var link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([result.xml], { type: "application/xml" }));
      link.download = (config.fileName || "process") + ".bpmn";
      document.body.appendChild(link);
      link.click();
      link.remove();
    });

    document.querySelectorAll("button.xp-problem-link[data-element-id]").forEach(function (button) {
      button.addEventListener("click", function () {
        var target = registry.get(button.getAttribute("data-element-id"));
        if (!target) {
          say("图中没有编号为 " + button.getAttribute("data-element-id") + " 的元素", "error");
          return;
        }
        selection.select(target);
        canvas.scrollToElement(target);
        container.scrollIntoView({ block: "center" });
      });
    });

    var checkForm = document.getElementById("xp-check-form");
    var xmlField = document.getElementById("xp-xml");
    if (checkForm && xmlField) checkForm.addEventListener("submit", function (event) {
      event.preventDefault();
      modeler.saveXML({ format: true }).then(function (result) {
        xmlField.value = result.xml;
        checkForm.submit();
      }).catch(function (err) {
        say("无法从编辑器导出流程图：" + (err && err.message || err), "error");
      });
    });

    renderPanel();
    refreshState();
    container.setAttribute("data-ready", "true");
  }
})();
