"""A safe expression language for diagrams: a small allow-listed subset of Python, interpreted.

Expressions in analyst-edited diagrams (gateway conditions, status labels, service parameters,
timers) are never given to Python's eval. They are parsed with `ast` and walked by this
interpreter, which knows only literals, task-data names, arithmetic, comparisons, boolean logic,
conditional expressions, subscripts and calls to the functions in FUNCTIONS. There is no
attribute access, no name starting with an underscore, no comprehension, lambda or assignment,
so an expression can neither escape nor loop.

Every evaluation has a budget. Steps are bounded when the expression is compiled: at most
MAX_NODES nodes, nested at most MAX_DEPTH deep, each visited at most once (there are no loops).
The operations whose cost grows with their data (repetition, %-formatting, round, and the
functions that walk a value) check their arguments before doing the work and charge what they
walk to a work budget, checked together with a wall-clock cap. Whatever goes wrong, including
MemoryError and RecursionError, ends in ExpressionError.
"""
from __future__ import annotations

import ast
import operator
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app import clock

MAX_SOURCE = 2000
MAX_NODES = 400
MAX_DEPTH = 40
MAX_SEQUENCE = 10_000  # items or characters in any one result
MAX_SIZE = 100_000  # items and characters, nested, of a value an operation may walk or build
MAX_WORK = 1_000_000  # units (items and characters walked or built) per evaluation
MAX_SECONDS = 0.25  # wall clock per evaluation
MAX_INT_BITS = 128
MAX_ROUND_DIGITS = 40  # enough for any int within MAX_INT_BITS
MAX_FORMAT_WIDTH = 1000  # width and precision in %-formatting
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


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
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
_SEQUENCES = (str, bytes, list, tuple)
_SCALARS = (int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)
_TEXT = frozenset({str})


# -- argument checks, made before the work ----------------------------------------------------------

def _size(value: Any, limit: int = MAX_SIZE) -> int:
    """Return the items and characters of a value, nested; refuse as soon as they pass the limit."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes, list, tuple, set, frozenset, dict)):
            total += len(item) + 1
        else:
            total += 1
            continue
        if total > limit or isinstance(item, (str, bytes)):
            continue
        if isinstance(item, dict):
            stack.append(list(item))
            stack.append(list(item.values()))
            continue
        # Kinds are found at C speed, so flat lists of numbers or of texts are never walked in Python.
        kinds = set(map(type, item))
        if kinds <= _SCALAR_TYPES:
            continue
        if kinds == _TEXT:
            total += sum(map(len, item))
        else:
            stack.extend(item)
    if total > limit:
        raise ExpressionError(f"数据过大（超过 {limit} 项或字符）")
    return total


def _repeat_size(left: Any, right: Any) -> int:
    """Refuse a repetition whose result would be too large; return the size it builds."""
    count, seq = (left, right) if isinstance(left, int) else (right, left)
    if not isinstance(seq, _SEQUENCES) or not isinstance(count, int) or count <= 0 or not seq:
        return 1
    if len(seq) * count > MAX_SEQUENCE:
        raise ExpressionError(f"重复后的结果过大（超过 {MAX_SEQUENCE} 项或字符）")
    if isinstance(seq, (str, bytes)):
        return len(seq) * count
    return _size(seq, MAX_SIZE // count) * count


def _check_format(template: str | bytes) -> int:
    """Refuse %-formatting with a starred, too wide or too precise field; return the padding it asks for."""
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    end = len(text)
    padding = 0
    at = text.find("%")
    while at != -1:
        i = at + 1
        if i < end and text[i] == "(":  # a mapping key, parentheses nested as Python reads them
            depth = 1
            i += 1
            while i < end and depth:
                depth += (text[i] == "(") - (text[i] == ")")
                i += 1
        while i < end and text[i] in "-+ #0":
            i += 1
        start = i
        while i < end and text[i] in "0123456789.*":
            i += 1
        for number in text[start:i].split("."):
            if number and ("*" in number or len(number) > 4 or int(number) > MAX_FORMAT_WIDTH):
                raise ExpressionError(f"格式化的宽度或精度过大（上限 {MAX_FORMAT_WIDTH}，不允许 *）")
            padding += int(number) if number else 0
        if padding > MAX_SEQUENCE:
            raise ExpressionError(f"格式化的结果过大（超过 {MAX_SEQUENCE} 个字符）")
        at = text.find("%", i + 1)
    return padding


def _check_round_digits(digits: Any) -> None:
    """Refuse round() to more than MAX_ROUND_DIGITS digits either side of the point."""
    if isinstance(digits, int) and not -MAX_ROUND_DIGITS <= digits <= MAX_ROUND_DIGITS:
        raise ExpressionError(f"round 的位数超出范围（-{MAX_ROUND_DIGITS} 至 {MAX_ROUND_DIGITS}）")


def _guard_round(ev: Evaluator, args: list[Any], kwargs: dict[str, Any]) -> None:
    _check_round_digits(args[1] if len(args) > 1 else kwargs.get("ndigits"))


def _guard_sum(ev: Evaluator, args: list[Any], kwargs: dict[str, Any]) -> None:
    # Summing lists or strings copies the running total on every item: quadratic, so numbers only.
    items = args[0] if args else ()
    ev.charge(_size(items))
    start = args[1] if len(args) > 1 else kwargs.get("start", 0)
    if not isinstance(start, _SCALARS) or not isinstance(items, (list, tuple, set, frozenset, dict)) or not all(
            isinstance(item, _SCALARS) for item in items):
        raise ExpressionError("sum 只能对数字求和")


def _guard_walk(ev: Evaluator, args: list[Any], kwargs: dict[str, Any]) -> None:
    for value in args:
        if not isinstance(value, _SCALARS):
            ev.charge(_size(value))
    for value in kwargs.values():
        if not isinstance(value, _SCALARS):
            ev.charge(_size(value))


# Functions whose cost grows with their arguments, and the check each makes first.
_GUARDS: dict[str, Callable[[Evaluator, list[Any], dict[str, Any]], None]] = {
    "round": _guard_round, "sum": _guard_sum,
    **{name: _guard_walk for name in ("str", "int", "float", "min", "max", "any", "all", "sorted")},
}


def _checked(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise ExpressionError("数值过大")
    if isinstance(value, (str, list, tuple, bytes, dict, set)) and len(value) > MAX_SEQUENCE:
        raise ExpressionError("结果过大")
    return value


# -- compiling ---------------------------------------------------------------------------------------

def _literal(node: ast.AST) -> Any:
    """Return the value of a literal number or text (a sign allowed), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _literal(node.operand)
        return -inner if isinstance(node.op, ast.USub) and isinstance(inner, (int, float)) else inner
    return node.value if isinstance(node, ast.Constant) else None


def _check_node(node: ast.AST) -> None:
    if not isinstance(node, _ALLOWED_NODES):
        raise ExpressionError(f"表达式中不允许使用 {type(node).__name__}")
    if isinstance(node, ast.Name) and node.id.startswith("_"):
        raise ExpressionError(f"不允许使用以下划线开头的名称：{node.id}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else "该函数"
            raise ExpressionError(f"不允许调用 {name}（只允许：{', '.join(sorted(FUNCTIONS))}）")
        # Literal arguments are checked now, so a diagram that would be refused at run time is not published.
        if node.func.id == "round" and len(node.args) > 1:
            _check_round_digits(_literal(node.args[1]))
    if isinstance(node, ast.keyword) and (node.arg is None or node.arg.startswith("_")):
        raise ExpressionError("不允许使用 ** 参数或以下划线开头的参数")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (str, bytes)) and len(node.value) > MAX_SEQUENCE:
            raise ExpressionError("表达式中的文字过长")
        _checked(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(_literal(node.left), (str, bytes)):
        _check_format(_literal(node.left))


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
    count = names = calls = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ExpressionError(f"表达式过于复杂（超过 {MAX_NODES} 个节点）")
        if depth > MAX_DEPTH:
            raise ExpressionError("表达式嵌套过深")
        _check_node(node)
        names += isinstance(node, ast.Name)
        calls += isinstance(node, ast.Call)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    if names == calls:
        # Only function names (every call names one): literals give the same result at every run, so fail now.
        _run(tree, {})
    return tree


# -- evaluating --------------------------------------------------------------------------------------

class Evaluator:
    """Walk a checked expression tree against task data, within one evaluation's budget."""

    __slots__ = ("names", "work", "deadline")

    def __init__(self, names: Mapping[str, Any]) -> None:
        self.names = names
        self.work = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def charge(self, units: int) -> None:
        """Spend work units; refuse once the evaluation's work or time budget is spent."""
        self.work += units
        if self.work > MAX_WORK:
            raise ExpressionError(f"表达式计算量超出限制（{MAX_WORK} 单位）")
        if time.monotonic() > self.deadline:
            raise ExpressionError(f"表达式计算超时（上限 {MAX_SECONDS} 秒）")

    def run(self, node: ast.AST) -> Any:
        """Return the value of one node."""
        if type(node) is ast.Constant:
            return node.value
        return _NODES[type(node)](self, node)

    def _name(self, node: ast.Name) -> Any:
        try:
            return self.names[node.id]
        except KeyError:
            raise ExpressionError(f"未定义的变量：{node.id}") from None

    def _binop(self, node: ast.BinOp) -> Any:
        left, right = self.run(node.left), self.run(node.right)
        op = type(node.op)
        if op is ast.Mult:
            if isinstance(left, _SEQUENCES) or isinstance(right, _SEQUENCES):
                self.charge(_repeat_size(left, right))
        elif op is ast.Mod and isinstance(left, (str, bytes)):
            self.charge(_check_format(left) + _size(right))
        return _checked(_BINOPS[op](left, right))

    def _unaryop(self, node: ast.UnaryOp) -> Any:
        value = self.run(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        return _checked(-value if isinstance(node.op, ast.USub) else +value)

    def _boolop(self, node: ast.BoolOp) -> Any:
        result: Any = None
        is_and = isinstance(node.op, ast.And)
        for part in node.values:
            result = self.run(part)
            if is_and != bool(result):
                return result
        return result

    def _compare(self, node: ast.Compare) -> bool:
        left = self.run(node.left)
        for op, comp in zip(node.ops, node.comparators):
            right = self.run(comp)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True

    def _ifexp(self, node: ast.IfExp) -> Any:
        return self.run(node.body) if self.run(node.test) else self.run(node.orelse)

    def _list(self, node: ast.List) -> list[Any]:
        return [self.run(e) for e in node.elts]

    def _tuple(self, node: ast.Tuple) -> tuple[Any, ...]:
        return tuple(self.run(e) for e in node.elts)

    def _set(self, node: ast.Set) -> set[Any]:
        return {self.run(e) for e in node.elts}

    def _dict(self, node: ast.Dict) -> dict[Any, Any]:
        return {self.run(k) if k is not None else None: self.run(v) for k, v in zip(node.keys, node.values)}

    def _subscript(self, node: ast.Subscript) -> Any:
        container = self.run(node.value)
        if isinstance(node.slice, ast.Slice):
            sl = node.slice
            return container[slice(*(self.run(p) if p is not None else None for p in (sl.lower, sl.upper, sl.step)))]
        key = self.run(node.slice)
        if isinstance(container, dict):
            return container.get(key)
        return container[key]

    def _call(self, node: ast.Call) -> Any:
        name = node.func.id  # type: ignore[attr-defined]  # compile_expression allows named calls only
        args = [self.run(a) for a in node.args]
        kwargs = {k.arg: self.run(k.value) for k in node.keywords if k.arg is not None}
        guard = _GUARDS.get(name)
        if guard is not None:
            guard(self, args, kwargs)
        return _checked(FUNCTIONS[name](*args, **kwargs))

    def _expression(self, node: ast.Expression) -> Any:
        return self.run(node.body)


_NODES: dict[type, Callable[[Evaluator, Any], Any]] = {
    ast.Expression: Evaluator._expression, ast.Name: Evaluator._name, ast.BinOp: Evaluator._binop,
    ast.UnaryOp: Evaluator._unaryop, ast.BoolOp: Evaluator._boolop, ast.Compare: Evaluator._compare,
    ast.IfExp: Evaluator._ifexp, ast.List: Evaluator._list, ast.Tuple: Evaluator._tuple, ast.Set: Evaluator._set,
    ast.Dict: Evaluator._dict, ast.Subscript: Evaluator._subscript, ast.Call: Evaluator._call,
}


def _run(tree: ast.Expression, names: Mapping[str, Any]) -> Any:
    try:
        return Evaluator(names).run(tree)
    except ExpressionError:
        raise
    # Whatever the data does to a builtin ends as the expression's refusal, never as a crash of the caller.
    except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"表达式求值失败：{type(exc).__name__}: {str(exc)[:200]}") from None


_CACHE: dict[str, ast.Expression] = {}


def evaluate(source: str, names: Mapping[str, Any]) -> Any:
    """Evaluate an allow-listed expression against the given names."""
    tree = _CACHE.get(source)
    if tree is None:
        tree = compile_expression(source)
        if len(_CACHE) < 5000:
            _CACHE[source] = tree
    return _run(tree, names)
