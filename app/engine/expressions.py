"""A safe expression language for diagrams: a small allow-listed subset of Python, interpreted.

Expressions in analyst-edited diagrams (gateway conditions, status labels, service parameters,
timers) are never given to Python's eval. They are parsed with `ast` and walked by this
interpreter, which knows only literals, task-data names, arithmetic, comparisons, boolean logic,
conditional expressions, subscripts and calls to the functions in FUNCTIONS. There is no
attribute access, no name starting with an underscore, no comprehension, lambda or assignment,
and sizes are bounded, so an expression can neither escape nor run away.
"""
from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app import clock

MAX_SOURCE = 2000
MAX_NODES = 400
MAX_DEPTH = 40
MAX_SEQUENCE = 10_000
MAX_INT_BITS = 128
CHINA = ZoneInfo("Asia/Shanghai")


class ExpressionError(Exception):
    """An expression is not allowed, or failed to evaluate."""


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value)
    else:
        raise ExpressionError("需要日期时间")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=CHINA)
    return dt


def _fn_now() -> str:
    return clock.now().isoformat()


def _fn_add_seconds(value: Any, seconds: Any) -> str:
    return (_to_datetime(value) + timedelta(seconds=float(seconds))).isoformat()


def _fn_add_days(value: Any, days: Any) -> str:
    return (_to_datetime(value) + timedelta(days=float(days))).isoformat()


def _fn_as_datetime(value: Any) -> str:
    return _to_datetime(value).astimezone(UTC).isoformat()


def _fn_is_before(a: Any, b: Any) -> bool:
    return _to_datetime(a) < _to_datetime(b)


def _fn_today() -> str:
    return clock.now().astimezone(CHINA).date().isoformat()


def _bounded_len(value: Any) -> int:
    return len(value)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _bounded_len,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "sum": sum,
    "any": any,
    "all": all,
    "sorted": sorted,
    "now": _fn_now,
    "today": _fn_today,
    "add_seconds": _fn_add_seconds,
    "add_days": _fn_add_days,
    "as_datetime": _fn_as_datetime,
    "is_before": _fn_is_before,
}

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
}
_ALLOWED_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare,
    ast.IfExp, ast.List, ast.Tuple, ast.Dict, ast.Set, ast.Subscript, ast.Call, ast.keyword, ast.Slice,
    ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, *_BINOPS, *_CMPOPS,
)


def compile_expression(source: str) -> ast.Expression:
    """Parse and check an expression; raise ExpressionError naming the first forbidden part."""
    if not isinstance(source, str):
        raise ExpressionError("表达式必须是文本")
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"表达式过长（超过 {MAX_SOURCE} 个字符）")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"表达式语法错误：{exc.msg}") from None
    except (ValueError, RecursionError, MemoryError):
        raise ExpressionError("表达式无法解析") from None
    count = 0
    for node in ast.walk(tree):
        count += 1
        if count > MAX_NODES:
            raise ExpressionError(f"表达式过于复杂（超过 {MAX_NODES} 个节点）")
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(f"表达式中不允许使用 {type(node).__name__}")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise ExpressionError(f"不允许使用以下划线开头的名称：{node.id}")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else "该函数"
                raise ExpressionError(f"不允许调用 {name}（只允许：{', '.join(sorted(FUNCTIONS))}）")
        if isinstance(node, ast.keyword) and (node.arg is None or node.arg.startswith("_")):
            raise ExpressionError("不允许使用 ** 参数或以下划线开头的参数")
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)) and len(node.value) > MAX_SEQUENCE:
            raise ExpressionError("表达式中的文字过长")
    return tree


class Evaluator:
    """Walk a checked expression tree against task data."""

    def __init__(self, names: Mapping[str, Any]) -> None:
        self.names = names
        self.depth = 0

    def run(self, node: ast.AST) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError("表达式嵌套过深")
        try:
            return self._eval(node)
        finally:
            self.depth -= 1

    def _eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return self.run(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id]
            if node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
            raise ExpressionError(f"未定义的变量：{node.id}")
        if isinstance(node, ast.BinOp):
            left, right = self.run(node.left), self.run(node.right)
            return _checked(_BINOPS[type(node.op)](left, _guard_mult(node.op, left, right)))
        if isinstance(node, ast.UnaryOp):
            value = self.run(node.operand)
            if isinstance(node.op, ast.Not):
                return not value
            return _checked(-value if isinstance(node.op, ast.USub) else +value)
        if isinstance(node, ast.BoolOp):
            result: Any = None
            for part in node.values:
                result = self.run(part)
                if isinstance(node.op, ast.And) and not result:
                    return result
                if isinstance(node.op, ast.Or) and result:
                    return result
            return result
        if isinstance(node, ast.Compare):
            left = self.run(node.left)
            for op, comp in zip(node.ops, node.comparators):
                right = self.run(comp)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.run(node.body) if self.run(node.test) else self.run(node.orelse)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = [self.run(e) for e in node.elts]
            return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](items)
        if isinstance(node, ast.Dict):
            return {self.run(k) if k is not None else None: self.run(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.Subscript):
            container = self.run(node.value)
            if isinstance(node.slice, ast.Slice):
                sl = node.slice
                return container[slice(*(self.run(p) if p is not None else None for p in (sl.lower, sl.upper, sl.step)))]
            key = self.run(node.slice)
            if isinstance(container, dict):
                return container.get(key)
            return container[key]
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            func = FUNCTIONS[node.func.id]
            args = [self.run(a) for a in node.args]
            kwargs = {k.arg: self.run(k.value) for k in node.keywords if k.arg is not None}
            for arg in args:
                if isinstance(arg, (str, list, tuple, dict, set)) and len(arg) > MAX_SEQUENCE:
                    raise ExpressionError("参数过大")
            return _checked(func(*args, **kwargs))
        raise ExpressionError(f"表达式中不允许使用 {type(node).__name__}")


def _guard_mult(op: ast.operator, left: Any, right: Any) -> Any:
    if isinstance(op, ast.Mult):
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple, bytes)) and isinstance(n, int) and len(seq) * max(n, 0) > MAX_SEQUENCE:
                raise ExpressionError("结果过大")
    return right


def _checked(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise ExpressionError("数值过大")
    if isinstance(value, (str, list, tuple, bytes, dict, set)) and len(value) > MAX_SEQUENCE:
        raise ExpressionError("结果过大")
    return value


_CACHE: dict[str, ast.Expression] = {}


def evaluate(source: str, names: Mapping[str, Any]) -> Any:
    """Evaluate an allow-listed expression against the given names."""
    tree = _CACHE.get(source)
    if tree is None:
        tree = compile_expression(source)
        if len(_CACHE) < 5000:
            _CACHE[source] = tree
    try:
        return Evaluator(names).run(tree)
    except ExpressionError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, OverflowError, RecursionError) as exc:
        raise ExpressionError(f"表达式求值失败：{type(exc).__name__}: {exc}") from None
