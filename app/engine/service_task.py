"""A service task that does not run in the request: it stays STARTED until an RQ job completes it."""
from __future__ import annotations

from typing import Any

from SpiffWorkflow.spiff.specs.defaults import ServiceTask


class DeferredServiceTask(ServiceTask):
    """Evaluate the call's parameters, record them on the task, and leave the task STARTED."""

    def _execute(self, task: Any) -> None:
        params = {name: task.workflow.script_engine.evaluate(task, param["value"])
                  for name, param in self.operation_params.items()}
        task._set_internal_data(service_call={"operation": self.operation_name, "params": params})
