"""Parse, check and cache process diagrams; one parsed copy per content hash."""
from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser
from SpiffWorkflow.spiff.specs.defaults import ScriptTask, UserTask

from app.engine.expressions import ExpressionError, compile_expression
from app.engine.service_task import DeferredServiceTask
from app.engine.vocabulary import MEANINGS, NATIONAL_DEFAULTS, REQUIRED_MEANINGS, Vocabulary, declared, status_words

MAX_BPMN_BYTES = 2 * 1024 * 1024
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"


class XPilotParser(SpiffBpmnParser):
    """The spiff parser with service tasks deferred to the worker."""

    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (ServiceTaskParser, DeferredServiceTask),
    }


@dataclass
class Problem:
    """One reason a diagram cannot be published."""

    message: str
    element_id: str = ""
    element_name: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = " ".join(p for p in (
            f"第 {self.line} 行" if self.line else "",
            f"元素 {self.element_id}" if self.element_id else "",
            f"（{self.element_name}）" if self.element_name else "",
        ) if p)
        return f"{where}：{self.message}" if where else self.message


class InvalidProcess(Exception):
    """A diagram failed validation; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class ParsedProcess:
    """A parsed, checked diagram with its forms, ready to run instances."""

    process_id: str
    content_hash: str
    spec: Any
    subprocess_specs: dict[str, Any]
    forms: dict[str, dict[str, Any]]
    xml: str
    task_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    vocabulary: Vocabulary = field(default_factory=lambda: Vocabulary(()))


def content_hash(xml: str, forms: Mapping[str, Any]) -> str:
    """Return the hash that names one version of a diagram with its forms."""
    digest = hashlib.sha256(xml.encode("utf-8"))
    digest.update(json.dumps(forms, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def safe_xml(xml: str | bytes) -> etree._Element:
    """Parse XML with DTDs, entities and network access refused."""
    raw = xml.encode("utf-8") if isinstance(xml, str) else xml
    if len(raw) > MAX_BPMN_BYTES:
        raise InvalidProcess([Problem(f"文件过大（{len(raw) // 1024} KB，上限 {MAX_BPMN_BYTES // 1024} KB）")])
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise InvalidProcess([Problem("不允许 DTD 或实体声明（DOCTYPE/ENTITY）")])
    parser = etree.XMLParser(resolve_entities=False, no_network=True, dtd_validation=False, load_dtd=False,
                             huge_tree=False, remove_comments=False)
    try:
        return etree.fromstring(raw, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise InvalidProcess([Problem(f"XML 格式错误：{exc.msg}", line=exc.lineno)]) from None


def _lines(root: etree._Element) -> dict[str, tuple[int, str]]:
    return {el.get("id"): (el.sourceline, el.get("name") or "") for el in root.iter() if el.get("id")}


def _process_properties(root: etree._Element) -> tuple[str, list[tuple[str, str]]]:
    """Return the id of the executable process element and the spiffworkflow properties set on it."""
    for process in root.iter(f"{{{BPMN_NS}}}process"):
        if process.get("isExecutable", "true") == "false":
            continue
        pairs = [(p.get("name") or "", p.get("value") or "")
                 for ext in process.findall(f"{{{BPMN_NS}}}extensionElements")
                 for props in ext.findall(f"{{{SPIFF_NS}}}properties")
                 for p in props.findall(f"{{{SPIFF_NS}}}property")]
        return process.get("id", ""), pairs
    return "", []


def read_vocabulary(xml: str, process_key: str) -> Vocabulary:
    """Read the statuses a stored diagram declares, without parsing the whole process (the national defaults for a
    version published before processes declared them)."""
    vocabulary, _ = declared(_process_properties(safe_xml(xml))[1])
    return vocabulary or NATIONAL_DEFAULTS.get(process_key, vocabulary)


def parse_process(xml: str, forms: Mapping[str, Any], *, lanes: Iterable[str],
                  operations: Mapping[str, Iterable[str]], strict: bool = True) -> ParsedProcess:
    """Validate a diagram and its forms and return it parsed; raise InvalidProcess listing every problem.

    strict: the checks of a new version (declared statuses, elements someone can complete); a stored version was
    checked when published, and one published before processes declared their statuses reads the national ones.
    """
    root = safe_xml(xml)
    where = _lines(root)
    problems: list[Problem] = []

    def problem(message: str, element_id: str = "") -> None:
        line, name = where.get(element_id, (None, ""))
        problems.append(Problem(message, element_id, name, line))

    for tag in ("scriptTask",):
        for el in root.iter(f"{{{BPMN_NS}}}{tag}"):
            problem("不允许脚本任务（scriptTask）", el.get("id", ""))
    if strict:
        # Nobody can complete these: a step modelled so would wait for ever.
        for tag, label in (("task", "普通任务（task）"), ("manualTask", "手工任务（manualTask）"),
                           ("businessRuleTask", "业务规则任务"), ("sendTask", "发送任务"), ("receiveTask", "接收任务")):
            for el in root.iter(f"{{{BPMN_NS}}}{tag}"):
                problem(f"不支持{label}：没有人能办理它，流程会停在这里。请改为用户任务（放在角色泳道中并指定表单）"
                        "或服务任务", el.get("id", ""))
    process_element, properties = _process_properties(root)
    # In a collaboration the process is drawn as its pool: point the editor at the pool.
    process_element = next((el.get("id", "") for el in root.iter(f"{{{BPMN_NS}}}participant")
                            if el.get("processRef") == process_element), process_element)
    vocabulary, vocabulary_errors = declared(properties)
    if strict:
        for message in vocabulary_errors:
            problem(f"状态声明有误：{message}", process_element)
    for tag in ("preScript", "postScript"):
        for el in root.iter(f"{{{SPIFF_NS}}}{tag}"):
            owner = el.getparent().getparent() if el.getparent() is not None else None
            problem(f"不允许 {tag}", owner.get("id", "") if owner is not None else "")
    # Conditions and timers are evaluated at run time: refuse any that the allow-list would refuse then.
    for tag in ("conditionExpression", "timeDate", "timeDuration", "timeCycle"):
        for el in root.iter(f"{{{BPMN_NS}}}{tag}"):
            owner = el.getparent()
            while owner is not None and (not owner.get("id") or str(owner.tag).endswith("EventDefinition")):
                owner = owner.getparent()
            try:
                compile_expression((el.text or "").strip() or "None")
            except ExpressionError as exc:
                owner_id = owner.get("id", "") if owner is not None else ""
                problems.append(Problem(f"{'条件' if tag == 'conditionExpression' else '定时器'}表达式不合法：{exc}",
                                        owner_id, where.get(owner_id, (None, ""))[1], el.sourceline))
    parser = XPilotParser(validator=VALIDATOR)
    try:
        parser.add_bpmn_xml(root, filename="diagram.bpmn")
        process_ids = parser.get_process_ids()
        if len(process_ids) != 1:
            raise InvalidProcess(problems + [Problem(f"图中应恰好有一个可执行流程（现有 {len(process_ids)} 个）")])
        process_id = process_ids[0]
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except ValidationException as exc:
        problem(f"BPMN 校验失败：{exc}", getattr(exc, "id", "") or "")
        raise InvalidProcess(problems) from None
    except etree.DocumentInvalid as exc:
        raise InvalidProcess(problems + [Problem(f"不符合 BPMN 规范：{exc}")]) from None
    if problems:
        raise InvalidProcess(problems)

    known_lanes = lanes if isinstance(lanes, set) else set(lanes)
    task_info: dict[str, dict[str, Any]] = {}
    all_specs = [spec, *subprocess_specs.values()]
    for proc in all_specs:
        for name, ts in proc.task_specs.items():
            ext = getattr(ts, "extensions", {}) or {}
            props = ext.get("properties", {}) or {}
            info: dict[str, Any] = {"title": getattr(ts, "bpmn_name", None) or name, "status": props.get("status"),
                                    "lane": getattr(ts, "lane", None)}
            for key in ("status", "dueInDays"):
                if props.get(key):
                    try:
                        compile_expression(props[key])
                    except ExpressionError as exc:
                        problem(f"属性 {key} 的表达式不合法：{exc}", name)
            if strict and props.get("status"):
                _check_status(props["status"], vocabulary, lambda message, n=name: problem(message, n))
            if isinstance(ts, ScriptTask):
                problem("不允许脚本任务", name)
            if getattr(ts, "prescript", None) or getattr(ts, "postscript", None):
                problem("不允许 preScript/postScript", name)
            if isinstance(ts, UserTask):
                form = props.get("formJsonSchemaFilename")
                info["form"] = form
                if not ts.lane:
                    problem("用户任务必须放在泳道中（泳道名即角色）", name)
                elif ts.lane not in known_lanes:
                    problem(f"泳道“{ts.lane}”不是已知角色（可用：{', '.join(sorted(known_lanes))}）", name)
                if not form:
                    problem("用户任务必须指定表单（formJsonSchemaFilename）", name)
                elif form not in forms:
                    problem(f"表单文件 {form} 不存在", name)
                else:
                    try:
                        jsonschema.Draft202012Validator.check_schema(forms[form])
                    except jsonschema.SchemaError as exc:
                        problem(f"表单 {form} 不是合法的 JSON Schema：{exc.message}", name)
            if isinstance(ts, DeferredServiceTask):
                needed = operations.get(ts.operation_name)
                if needed is None:
                    problem(f"服务操作 {ts.operation_name} 未注册（可用：{', '.join(sorted(operations))}）", name)
                else:
                    missing = set(needed) - set(ts.operation_params)
                    if missing:
                        problem(f"服务操作 {ts.operation_name} 缺少参数：{', '.join(sorted(missing))}", name)
                for pname, param in ts.operation_params.items():
                    try:
                        compile_expression(param["value"])
                    except ExpressionError as exc:
                        problem(f"参数 {pname} 的表达式不合法：{exc}", name)
            task_info[name] = info
    if not vocabulary:
        vocabulary = NATIONAL_DEFAULTS.get(process_id, vocabulary)
    if strict:
        absent = [m for m in REQUIRED_MEANINGS.get(process_id, ()) if not vocabulary.words(m)]
        if absent:
            problem("流程的状态声明缺少这些含义的状态：" + "、".join(f"{MEANINGS[m][0]}（{m}）" for m in absent),
                    process_element)
    if problems:
        raise InvalidProcess(problems)
    return ParsedProcess(process_id, content_hash(xml, forms), spec, subprocess_specs, dict(forms), xml, task_info,
                         vocabulary)


def _check_status(source: str, vocabulary: Vocabulary, problem: Any) -> None:
    """Refuse a status expression that could yield a status the process does not declare."""
    try:
        words = status_words(source)
    except ExpressionError as exc:
        problem(f"状态表达式不合法：{exc}")
        return
    if not vocabulary:
        problem("流程没有声明状态：请在流程属性中列出每个状态及其含义（status:状态名 = 含义）")
        return
    for word in sorted(words - {w for w, _ in vocabulary}):
        problem(f"状态“{word}”没有在流程的状态声明中（已声明：{'、'.join(w for w, _ in vocabulary)}）")


class SpecCache:
    """Parsed processes kept in memory by content hash (thread-safe)."""

    def __init__(self) -> None:
        self._by_hash: dict[str, ParsedProcess] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> ParsedProcess | None:
        return self._by_hash.get(digest)

    def put(self, parsed: ParsedProcess) -> ParsedProcess:
        with self._lock:
            return self._by_hash.setdefault(parsed.content_hash, parsed)

    def clear(self) -> None:
        with self._lock:
            self._by_hash.clear()


SPEC_CACHE = SpecCache()
