"""The publish gate's check of text messages: every template a diagram names exists, every placeholder of every text
it may render to is filled, from data the instance holds at that step, and every selector of a message to many is
one the app knows."""
from __future__ import annotations

from collections.abc import Mapping

from app.engine.checks import MessageUsage, message_usages, names_available, names_read
from app.engine.expressions import FUNCTIONS, ExpressionError
from app.engine.specs import ParsedProcess, Problem
from app.sms.recipients import filled_by_selector, selector_problems
from app.sms.templates import TemplateError, TemplateText, placeholders


def message_problems(parsed: ParsedProcess, given: Mapping[str, str],
                     templates: Mapping[str, list[TemplateText]]) -> list[Problem]:
    """Return a problem, with the element, for each message step that could not be sent as drawn."""
    problems: list[Problem] = []
    for usage in message_usages(parsed):
        def problem(message: str, usage: MessageUsage = usage) -> None:
            problems.append(Problem(message, usage.element_id, usage.element_name, usage.line))

        for message in usage.problems or []:
            problem(message)
        has_plan = "plan_id" in usage.param_names
        filled = dict(usage.filled) if usage.filled is not None else None
        if usage.operation == "sms_many":
            for message in selector_problems(usage.selector, has_plan):
                problem(message)
            if filled is not None:
                filled.update({k: f"（每个收件人的{v}）" for k, v in filled_by_selector(usage.selector, has_plan).items()})
        if usage.template is None:
            problem(f"template 参数必须是带引号的模板名称，如 'review_approved'（现为 {usage.template_source}），"
                    f"以便发布前检查模板是否存在")
            continue
        texts = templates.get(usage.template)
        if not texts:
            known = "、".join(sorted(templates)) or "无"
            problem(f"短信模板“{usage.template}”不存在：请先在“短信模板”页面添加，或改用已有模板（{known}）")
            continue
        if filled is None:
            continue  # the app prepared the message (message_ref) and filled it
        for text in texts:
            try:
                needed = placeholders(text.text)
            except TemplateError as exc:
                problem(f"短信模板“{usage.template}”的文字不合法：{exc}")
                continue
            missing = [name for name in needed if name not in filled]
            if missing:
                where = f"{text.scope} 省的模板文字" if text.scope else "模板文字"
                problem(f"短信模板“{usage.template}”的{where}使用了占位符 {', '.join('{' + m + '}' for m in missing)}，"
                        f"但此步骤没有填写：请在 vars 中加入 {', '.join(repr(m) + ': ...' for m in missing)}")
        available = names_available(parsed, given, usage.task_name)
        for placeholder, source in (usage.filled or {}).items():
            try:
                unknown = sorted(names_read(source) - available - set(FUNCTIONS))
            except ExpressionError:
                continue  # refused by the parse already, with its reason
            if unknown:
                problem(f"占位符 {{{placeholder}}} 由 {source} 填写，但流程到此步骤时还没有变量 {', '.join(unknown)}"
                        f"（此步骤可用：{'、'.join(sorted(available))}）")
    return problems

