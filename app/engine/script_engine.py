"""The script engine given to every workflow: allow-listed expressions, no scripts, no services."""
from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import (
    BasePythonScriptEngineEnvironment,
)

from app.engine.expressions import ExpressionError, compile_expression, evaluate


class SafeEnvironment(BasePythonScriptEngineEnvironment):
    """Evaluate expressions with the allow-list interpreter; refuse scripts and direct service calls."""

    def __init__(self) -> None:
        super().__init__({})

    def evaluate(self, expression: str, context: dict[str, Any], external_context: dict[str, Any] | None = None) -> Any:
        names = dict(context)
        if external_context:
            names.update(external_context)
        return evaluate(expression, names)

    def execute(self, script: str, context: dict[str, Any], external_context: dict[str, Any] | None = None) -> bool:
        raise ExpressionError("流程中不允许脚本（script task / pre-script / post-script）")

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> str:
        raise ExpressionError("服务任务由后台任务执行，不能在流程内直接调用")


class SafeScriptEngine(PythonScriptEngine):
    """PythonScriptEngine whose environment is the allow-list interpreter."""

    def __init__(self) -> None:
        super().__init__(environment=SafeEnvironment())

    def validate(self, expression: str) -> None:
        compile_expression(expression)


SAFE_ENGINE = SafeScriptEngine()
