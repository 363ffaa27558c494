/*
 * X-Pilot process diagrams, on the bpmn-js UMD bundles (global BpmnJS): a viewer that marks the path an
 * instance took and the task it waits at, and the modeler with a small side panel for the spiffworkflow
 * extension elements our engine reads (the process's statuses, forms, status expressions, service operations
 * and parameters, conditions, lanes named by role codes). Every edit goes through bpmn-js's modeling API, so
 * undo and redo work.
 *
 * The page passes its settings as JSON in <script type="application/json" id="xp-diagram-config">.
 */
(function () {
  "use strict";

  var SPIFF = "spiffworkflow";
  var STATUS_PREFIX = "status:";
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

    // owner: the business object that gets the extension, when it is not the element's own (a pool's process).
    function addExtension(element, child, owner) {
      var bo = owner || element.businessObject;
      var ext = bo.extensionElements;
      if (!ext) {
        ext = moddle.create("bpmn:ExtensionElements", { values: [child] });
        child.$parent = ext;
        ext.$parent = bo;
        modeling.updateModdleProperties(element, bo, { extensionElements: ext });
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

    function setProperty(element, name, value, owner) {
      var props = extensionOf(owner || element.businessObject, SPIFF + ":Properties");
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
        addExtension(element, props, owner);
      }
    }

    // ---- the process's statuses: "status:<word>" properties of the process, in display order

    function statusesOf(processBo) {
      var props = extensionOf(processBo, SPIFF + ":Properties");
      return (props && props.properties || []).filter(function (p) {
        return (p.name || "").indexOf(STATUS_PREFIX) === 0;
      });
    }

    function wordOf(prop) {
      return prop.name.slice(STATUS_PREFIX.length);
    }

    function refuseWord(processBo, word, prop) {
      if (!word) return "状态名称不能为空（不需要的状态请删除）";
      var taken = statusesOf(processBo).some(function (p) { return p !== prop && wordOf(p) === word; });
      return taken ? "状态“" + word + "”已经声明过" : "";
    }

    function addStatus(element, processBo, word, meaning) {
      var refusal = refuseWord(processBo, word, null) || (meaning ? "" : "请选择新状态的含义");
      if (refusal) {
        say(refusal, "error");
        return;
      }
      setProperty(element, STATUS_PREFIX + word, meaning, processBo);
    }

    function renameStatus(element, processBo, prop, word) {
      if (word === wordOf(prop)) return;
      var refusal = refuseWord(processBo, word, prop);
      if (refusal) {
        say(refusal, "error");
        renderPanel();  // show the word as it still is
        return;
      }
      modeling.updateModdleProperties(element, prop, { name: STATUS_PREFIX + word });
    }

    // Swap with the neighbouring status; other properties keep their places.
    function moveStatus(element, processBo, prop, step) {
      var props = extensionOf(processBo, SPIFF + ":Properties");
      var statuses = statusesOf(processBo);
      var other = statuses[statuses.indexOf(prop) + step];
      if (!other) return;
      var list = props.properties.slice();
      list[list.indexOf(prop)] = other;
      list[props.properties.indexOf(other)] = prop;
      modeling.updateModdleProperties(element, props, { properties: list });
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
      if (!element || element.type === "bpmn:Process" || element.type === "bpmn:Collaboration") renderDiagram();
      else renderElement(element);

      if (focused) {
        var again = panel.querySelector('[data-key="' + focused + '"]');
        if (again) again.focus();
      }
    }

    function renderDiagram() {
      panel.appendChild(node("h3", "", "属性"));
      panel.appendChild(node("p", "muted", "在图上选择一个元素（任务、连线、泳道…）以编辑它的属性。"));
      var root = canvas.getRootElement();
      if (root.type === "bpmn:Process") {
        renderStatuses(root, root.businessObject);
        return;
      }
      var pools = registry.filter(function (e) { return e.type === "bpmn:Participant" && e.businessObject.processRef; });
      if (pools.length === 1) renderStatuses(pools[0], pools[0].businessObject.processRef);
      else if (pools.length > 1) panel.appendChild(node("p", "muted", "图中有多个池：选择一个池以编辑它的流程状态。"));
    }

    function renderElement(element) {
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
      if (element.type === "bpmn:Participant" && bo.processRef) renderStatuses(element, bo.processRef);

      if (element.type === "bpmn:UserTask") {
        var forms = formNames().map(function (f) { return [f, f]; });
        panel.appendChild(field("表单文件", selectInput("form", [["", "请选择"]].concat(forms),
          propertyValue(bo, "formJsonSchemaFilename"), function (v) { setProperty(element, "formJsonSchemaFilename", v); }),
          "办理此任务时填写的表单（本版本的表单；在下方“表单”中新建或修改）"));
      }
      if (element.type === "bpmn:UserTask" || element.type === "bpmn:ServiceTask") {
        panel.appendChild(field("状态表达式", textInput("status", propertyValue(bo, "status"), function (v) {
          setProperty(element, "status", v);
        }), "到达此任务时学校看到的状态，如 '市级初审中'（文字需加引号），也可以是条件表达式；"
          + "用到的状态都须在“流程状态”中声明（不选任何元素或选择池时在此面板编辑）"));
      }
      if (element.type === "bpmn:ServiceTask") renderService(element, bo);
      if (element.type === "bpmn:SequenceFlow") renderFlow(element, bo);
    }

    // element: the shape that carries the commands (the process's root, or the pool that shows the process).
    function renderStatuses(element, processBo) {
      var meanings = config.meanings || [];
      var options = meanings.map(function (m) { return [m.value, m.label]; });
      var statuses = statusesOf(processBo);
      var box = section("流程状态");
      box.appendChild(node("p", "help", "学校和工作人员看到的状态，按显示顺序排列。含义决定系统怎样对待该状态"
        + "（能否修改、怎样统计）；任务的状态表达式只能使用这里声明的状态。"));
      var list = node("ol", "xp-statuses");
      statuses.forEach(function (prop, i) {
        var word = wordOf(prop);
        var row = node("li", "xp-status");
        var wordInput = textInput("status-word-" + i, word, function (v) { renameStatus(element, processBo, prop, v); });
        wordInput.setAttribute("aria-label", "第 " + (i + 1) + " 个状态的名称");
        row.appendChild(wordInput);
        var meaningSelect = selectInput("status-meaning-" + i, options, prop.value, function (v) {
          modeling.updateModdleProperties(element, prop, { value: v });
        });
        meaningSelect.setAttribute("aria-label", "“" + word + "”的含义");
        row.appendChild(meaningSelect);
        row.appendChild(rowButton("↑", "上移“" + word + "”", i === 0, function () {
          moveStatus(element, processBo, prop, -1);
        }));
        row.appendChild(rowButton("↓", "下移“" + word + "”", i === statuses.length - 1, function () {
          moveStatus(element, processBo, prop, 1);
        }));
        row.appendChild(rowButton("×", "删除“" + word + "”", false, function () {
          var props = extensionOf(processBo, SPIFF + ":Properties");
          modeling.updateModdleProperties(element, props, {
            properties: props.properties.filter(function (p) { return p !== prop; })
          });
        }));
        list.appendChild(row);
      });
      if (statuses.length) box.appendChild(list);
      else box.appendChild(node("p", "error-text", "还没有声明状态：校验会拒绝带状态表达式的任务。"));

      var newWord = textInput("new-status", "", function () {});
      box.appendChild(field("新状态名称", newWord));
      var newMeaning = selectInput("new-status-meaning", [["", "请选择"]].concat(options), "", function () {});
      box.appendChild(field("新状态含义", newMeaning));
      var addButton = node("button", "btn secondary", "添加状态");
      addButton.type = "button";
      addButton.addEventListener("click", function () {
        addStatus(element, processBo, newWord.value.trim(), newMeaning.value);
      });
      box.appendChild(addButton);

      var about = node("details", "xp-meanings");
      about.appendChild(node("summary", "", "各含义的说明"));
      var terms = node("dl");
      meanings.forEach(function (m) {
        terms.appendChild(node("dt", "", m.label));
        terms.appendChild(node("dd", "", m.description));
      });
      about.appendChild(terms);
      box.appendChild(about);
      panel.appendChild(box);
    }

    function rowButton(text, label, disabled, onClick) {
      var button = node("button", "btn secondary xp-row-button", text);
      button.type = "button";
      button.title = label;
      button.setAttribute("aria-label", label);
      button.disabled = disabled;
      button.addEventListener("click", onClick);
      return button;
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

    // The draft's forms live in the check form's #xp-forms field, kept by form-editor.js.
    function formNames() {
      var store = document.getElementById("xp-forms");
      try {
        return Object.keys(store ? JSON.parse(store.value || "{}") : {}).sort();
      } catch (err) {
        return (config.forms || []).slice();
      }
    }

    // ---- toolbar, dirty state, problems, check and publish forms

    var undo = document.getElementById("xp-undo");
    var redo = document.getElementById("xp-redo");
    var dirtyNote = document.getElementById("xp-dirty");
    var publishButton = document.getElementById("xp-publish");
    var staleNote = document.getElementById("xp-stale");

    var formsChanged = false;

    function refreshState() {
      var changed = commandStack.canUndo() || formsChanged;
      if (undo) undo.disabled = !commandStack.canUndo();
      if (redo) redo.disabled = !commandStack.canRedo();
      if (dirtyNote) dirtyNote.textContent = changed ? "有尚未校验的修改" : "";
      if (publishButton) publishButton.disabled = changed;
      if (staleNote) staleNote.hidden = !changed;
    }

    if (undo) undo.addEventListener("click", function () { commandStack.undo(); });
    if (redo) redo.addEventListener("click", function () { commandStack.redo(); });
    eventBus.on("selection.changed", renderPanel);
    eventBus.on("commandStack.changed", function () {
      renderPanel();
      refreshState();
      document.dispatchEvent(new CustomEvent("xp-diagram-changed"));
    });
    document.addEventListener("xp-forms-changed", function () {
      formsChanged = true;
      renderPanel();
      refreshState();
    });

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
    document.dispatchEvent(new CustomEvent("xp-diagram-changed"));
  }
})();
