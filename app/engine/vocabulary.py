"""The statuses a process declares, each with a meaning the app knows; and what a status expression can yield.

A diagram lists its statuses as properties of its process element, in display order:

    <bpmn:process id="declaration">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="status:草稿" value="draft" />
          <spiffworkflow:property name="status:待审核" value="waiting" />
          ...

The words are the province's; the meanings are the fixed set below, and they are all that Python compares.
"""
from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from app.engine.expressions import ExpressionError, compile_expression

STATUS_PREFIX = "status:"

DRAFT = "draft"
WAITING = "waiting"
RETURNED = "returned"
APPROVED = "approved"
REJECTED = "rejected"
EXPIRED = "expired"
PROGRESS = "progress"

# meaning -> (short label, what it means to the app); the labels head dashboard columns that sum statuses of
# one meaning across provinces whose words differ.
MEANINGS: dict[str, tuple[str, str]] = {
    DRAFT: ("未提交", "学校可修改、尚未提交；申报截止时变为“过期”类状态"),
    WAITING: ("处理中", "等待工作人员办理（审核队列的状态筛选逐个列出）"),
    RETURNED: ("退回修改", "退回学校修改后可再次提交；申报截止后不能再修改，计为“不通过”"),
    APPROVED: ("通过", "审核通过：计入试点院校结果和公示"),
    REJECTED: ("不通过", "最终不通过，已结束"),
    EXPIRED: ("过期", "截止时仍未提交的草稿"),
    PROGRESS: ("进行中", "仅说明进度（如计划、注册流程的步骤）"),
}

# What the school may still change: a declaration in one of these meanings is editable while its task is open.
SCHOOL_EDITABLE = (DRAFT, RETURNED)
# Decided for good: counted as outcomes on dashboards.
NOT_APPROVED = (RETURNED, REJECTED)


@dataclass(frozen=True)
class Vocabulary:
    """A process's statuses in display order, each with its meaning."""

    statuses: tuple[tuple[str, str], ...]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.statuses)

    def __bool__(self) -> bool:
        return bool(self.statuses)

    def meaning_of(self, word: str) -> str | None:
        """Return the meaning of a status word (None: not declared)."""
        for status, meaning in self.statuses:
            if status == word:
                return meaning
        return None

    def words(self, *meanings: str) -> list[str]:
        """Return the words with one of these meanings, in display order."""
        return [status for status, meaning in self.statuses if meaning in meanings]

    def first(self, meaning: str) -> str | None:
        """Return the first word with this meaning (None: the process declares none)."""
        found = self.words(meaning)
        return found[0] if found else None

    def label(self, meaning: str) -> str:
        """Return the first word of a meaning, else the meaning's own label."""
        return self.first(meaning) or MEANINGS[meaning][0]


# The national process's defaults: stored versions published before processes declared their statuses read these.
NATIONAL_DEFAULTS: dict[str, Vocabulary] = {
    "declaration": Vocabulary((("草稿", DRAFT), ("待审核", WAITING), ("审核通过", APPROVED),
                               ("审核不通过", RETURNED), ("已过期", EXPIRED))),
    "plan": Vocabulary((("申报已截止", PROGRESS), ("结果公示中", PROGRESS), ("公示结束", PROGRESS))),
    "registration": Vocabulary((("账号短信发送中", PROGRESS),)),
}

# A process must be able to say these of its declarations.
REQUIRED_MEANINGS: dict[str, tuple[str, ...]] = {"declaration": (DRAFT, WAITING, APPROVED, EXPIRED)}


def declared(pairs: Iterable[tuple[str, str]]) -> tuple[Vocabulary, list[str]]:
    """Build a vocabulary from (property name, value) pairs of a process element; return it and what is wrong."""
    statuses: list[tuple[str, str]] = []
    errors: list[str] = []
    for name, value in pairs:
        if not name.startswith(STATUS_PREFIX):
            continue
        word, meaning = name[len(STATUS_PREFIX):].strip(), (value or "").strip()
        if not word:
            errors.append("状态名称不能为空")
        elif len(word) > 16:
            errors.append(f"状态“{word}”过长（最多 16 个字）")
        elif meaning not in MEANINGS:
            errors.append(f"状态“{word}”的含义“{meaning}”不是可选的含义之一（{', '.join(MEANINGS)}）")
        elif any(word == w for w, _ in statuses):
            errors.append(f"状态“{word}”重复声明")
        else:
            statuses.append((word, meaning))
    return Vocabulary(tuple(statuses)), errors


def status_words(source: str) -> set[str]:
    """Return every status a status expression can yield; raise ExpressionError if one is not a literal.

    A status expression is a text in quotes, or a condition choosing between such texts
    ('审核不通过' if decision == 'reject' else '草稿'), so that publishing can check every outcome.
    """
    tree = compile_expression(source)
    found: set[str] = set()

    def walk(node: ast.AST) -> None:
        if isinstance(node, ast.Expression):
            walk(node.body)
        elif isinstance(node, ast.IfExp):
            walk(node.body)
            walk(node.orelse)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)
        else:
            raise ExpressionError("状态表达式只能是加引号的状态名，或在几个状态名之间选择的条件表达式"
                                  "（如 '退回修改' if decision == 'reject' else '草稿'）")

    walk(tree)
    return found
