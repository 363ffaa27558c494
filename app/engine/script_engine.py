"""The script engine given to every workflow: allow-listed expressions, no scripts, no services."""
from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping, MutableMapping
from typing import Any, cast

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import (
    BasePythonScriptEngineEnvironment,
)
from SpiffWorkflow.exceptions import SpiffWorkflowException

from app.engine.expressions import ExpressionError, compile_expression, evaluate


class SafeEnvironment(BasePythonScriptEngineEnvironment):
    """Evaluate expressions with the allow-list interpreter; refuse scripts and direct service calls."""

    def __init__(self) -> None:
        super().__init__({})

    def evaluate(self, expression: str, context: Mapping[str, Any],
                 external_context: Mapping[str, Any] | None = None) -> Any:
        # Read only: the interpreter never writes names, so the task's own dict is read in place, not copied.
        return evaluate(expression, ChainMap(dict(external_context), cast(MutableMapping[str, Any], context))
                        if external_context else context)

    def execute(self, script: str, context: dict[str, Any], external_context: dict[str, Any] | None = None) -> bool:
        raise ExpressionError("流程中不允许脚本（script task / pre-script / post-script）")

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> str:
        raise ExpressionError("服务任务由后台任务执行，不能在流程内直接调用")


def names_of(task: Any) -> Mapping[str, Any]:
    """The names an expression of a task reads: the task's data, then the instance's shared data (the plan's times,
    say), which the app keeps once per instance rather than in every task."""
    shared = getattr(task.workflow, "top_workflow", task.workflow).data
    return ChainMap(task.data, shared) if shared else task.data


class SafeScriptEngine(PythonScriptEngine):
    """PythonScriptEngine whose environment is the allow-list interpreter."""

    def __init__(self) -> None:
        super().__init__(environment=SafeEnvironment())

    def evaluate(self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None) -> Any:
        """Evaluate an expression on the task's data and the instance's shared data."""
        try:
            return self.environment.evaluate(expression, names_of(task), external_context)
        except SpiffWorkflowException as exc:
            exc.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as exc:
            raise WorkflowTaskException(f"Error evaluating expression '{expression}'", task=task, exception=exc) from exc

    def validate(self, expression: str) -> None:
        compile_expression(expression)


SAFE_ENGINE = SafeScriptEngine()
