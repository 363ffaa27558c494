"""Store only an instance's state, restore it against the cached spec, and keep it small."""
from __future__ import annotations

import contextvars
import json
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.util.task import TaskState

from app.engine.script_engine import SAFE_ENGINE
from app.engine.service_task import DeferredServiceTask
from app.engine.specs import ParsedProcess

_restoring: contextvars.ContextVar[ParsedProcess] = contextvars.ContextVar("restoring")


class StateOnlyWorkflowConverter(BpmnWorkflowConverter):
    """Leave the spec out of the state; take it from the cache on restore."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = super().to_dict(workflow)
        dct.pop("spec", None)
        dct.pop("subprocess_specs", None)
        return dct

    def from_dict(self, dct: dict[str, Any]) -> BpmnWorkflow:
        parsed = _restoring.get()
        workflow = self.target_class(parsed.spec, parsed.subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


_config = dict(SPIFF_CONFIG)
_config[BpmnWorkflow] = StateOnlyWorkflowConverter
_config[DeferredServiceTask] = ServiceTaskConverter
SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_config))


def dump_state(workflow: BpmnWorkflow) -> str:
    """Serialize the workflow's state (not its spec) to JSON: compact, with Chinese text as itself rather than
    \\u escapes (a third of the size of a state of Chinese names)."""
    registry: Any = SERIALIZER.registry
    registry._encoder_mode = True  # as SERIALIZER.serialize_json does
    try:
        dct = SERIALIZER.to_dict(workflow)
        dct[SERIALIZER.VERSION_KEY] = SERIALIZER.VERSION
        return json.dumps(dct, cls=SERIALIZER._encoder_cls, ensure_ascii=False, separators=(",", ":"))
    finally:
        registry._encoder_mode = False


def load_state(parsed: ParsedProcess, state: str) -> BpmnWorkflow:
    """Restore a workflow from its state against the cached parsed spec."""
    token = _restoring.set(parsed)
    try:
        dct = json.loads(state)
        SERIALIZER.migrate(dct)
        workflow = SERIALIZER.from_dict(dct)
    finally:
        _restoring.reset(token)
    workflow.script_engine = SAFE_ENGINE
    return workflow


def compact(workflow: BpmnWorkflow) -> int:
    """Drop finished history above the newest ancestor shared by all live tasks; return tasks removed.

    Each reject loop would otherwise add a dozen finished tasks that every later load must restore.
    The history users see lives in the declaration's own event table, so nothing visible is lost.
    Only top-level workflows without subprocesses are compacted.
    """
    if workflow.subprocesses:
        return 0
    root = workflow.task_tree
    # Predicted tasks hang below the active ones, so the active ones decide where history can be cut.
    live = [t for t in workflow.tasks.values()
            if t.has_state(TaskState.READY | TaskState.STARTED | TaskState.WAITING | TaskState.ERROR)]
    if not live:
        return 0
    chains = []
    for task in live:
        chain = []
        node = task
        while node is not None:
            chain.append(node)
            node = node.parent
        chains.append(list(reversed(chain)))
    # Newest common ancestor of every live task.
    common = None
    for nodes in zip(*chains):
        if all(n is nodes[0] for n in nodes):
            common = nodes[0]
        else:
            break
    if common is None or common is root:
        return 0
    # Keep root and the first task below it (the start), then hang the kept subtree from it.
    anchor_chain = chains[0]
    idx = anchor_chain.index(common)
    # Find the deepest finished task at or above `common` whose own parent is finished: that is the cut.
    cut = common
    while idx > 2 and not cut.has_state(TaskState.FINISHED_MASK):
        idx -= 1
        cut = anchor_chain[idx]
    if idx <= 2:
        return 0
    start = anchor_chain[1]
    removed = 0
    keep = set()
    stack = [cut]
    while stack:
        node = stack.pop()
        keep.add(node.id)
        stack.extend(node.children)
    keep.add(root.id)
    keep.add(start.id)
    cut_data = cut.data
    for task_id in list(workflow.tasks):
        if task_id not in keep:
            del workflow.tasks[task_id]
            removed += 1
    start._children = [cut.id]
    cut._parent = start.id
    cut.data = cut_data
    if workflow.last_task is not None and workflow.last_task.id not in keep:
        workflow.last_task = None
    return removed
