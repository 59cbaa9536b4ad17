"""Building blocks of the file schemas: strict field types whose errors read "expected ...", JSON reading that
cannot crash on hostile input, and the conversion of pydantic's errors into one line naming the file, the key path
and the expected value (``configs/x.json: encoding.n_levels: expected an integer in 1..32, got "8"``).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Annotated, Any, Callable, ClassVar, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, ValidationError, WrapValidator
from pydantic_core import PydanticCustomError

from ..errors import NgpError

log = logging.getLogger("ngp_app")

MAX_JSON_DEPTH = 32  # our files nest 4 levels (frames -> frame -> matrix -> row); deeper is hostile or broken
MAX_JSON_BYTES = 1 << 30

M = TypeVar("M", bound="Model")


class Model(BaseModel):
    """Base of every schema: unknown keys are kept (and reported once by :func:`validate`), values are not coerced.

    ``IGNORED`` names keys that other tools write and we knowingly do not use (no warning for them)."""

    model_config = ConfigDict(extra="allow", strict=True)
    IGNORED: ClassVar[frozenset[str]] = frozenset()


# ------------------------------------------------------------------------------------------------ field types
def expect(text: str) -> WrapValidator:
    """Replace whatever pydantic says about a bad value by ``expected <text>`` (the value is appended later)."""

    def wrap(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except (ValidationError, ValueError, TypeError):
            raise PydanticCustomError("expected", "expected {expected}", {"expected": text}) from None

    return WrapValidator(wrap)


def _num(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _range_text(ge: float | None, le: float | None, gt: float | None = None, lt: float | None = None) -> str:
    if ge is not None and le is not None:
        return f" in {_num(ge)}..{_num(le)}"
    lo = f"[{_num(ge)}" if ge is not None else f"({_num(gt)}" if gt is not None else None
    hi = f"{_num(le)}]" if le is not None else f"{_num(lt)})" if lt is not None else None
    if lo and hi:
        return f" in {lo}, {hi}"
    if ge is not None:
        return f" >= {_num(ge)}"
    if gt is not None:
        return f" > {_num(gt)}"
    if le is not None:
        return f" <= {_num(le)}"
    if lt is not None:
        return f" < {_num(lt)}"
    return ""


def Int(ge: int | None = None, le: int | None = None) -> Any:
    """A JSON integer (not a bool, not 8.0, not "8") in ``ge..le``."""
    return Annotated[int, Strict(), Field(ge=ge, le=le), expect(f"an integer{_range_text(ge, le)}")]


def IntIn(*choices: int) -> Any:
    """A JSON integer among ``choices``."""

    def check(v: int) -> int:
        if v not in choices:
            raise ValueError("not allowed")
        return v

    return Annotated[int, Strict(), AfterValidator(check), expect("one of " + ", ".join(map(str, choices)))]


def Number(
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    text: str | None = None,
) -> Any:
    """A finite JSON number (integers allowed) within the given bounds."""
    what = text or f"a finite number{_range_text(ge, le, gt, lt)}"
    return Annotated[float, Field(ge=ge, le=le, gt=gt, lt=lt, allow_inf_nan=False), expect(what)]


def _whole(lo: int, hi: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v):
            raise ValueError("not whole")
        if not lo <= int(v) <= hi:
            raise ValueError("out of range")
        return int(v)

    return check


def Whole(ge: int, le: int) -> Any:
    """An integer that tools may write as a float (``1920.0``, as instant-ngp's colmap2nerf does)."""
    return Annotated[Any, AfterValidator(_whole(ge, le)), expect(f"a whole number in {ge}..{le}")]


def _power_of_two(v: int) -> int:
    if v & (v - 1):
        raise ValueError("not a power of two")
    return v


def PowerOfTwo(ge: int, le: int) -> Any:
    """A power-of-two JSON integer in ``ge..le``."""
    return Annotated[
        int, Strict(), Field(ge=ge, le=le), AfterValidator(_power_of_two), expect(f"a power of two in {ge}..{le}")
    ]


def OneOf(*choices: str, case_sensitive: bool = True) -> Any:
    """One of the given strings (optionally ignoring case)."""
    folded = {c if case_sensitive else c.lower() for c in choices}

    def check(v: str) -> str:
        if (v if case_sensitive else v.lower()) not in folded:
            raise ValueError("unknown")
        return v

    return Annotated[
        str, Strict(), AfterValidator(check), expect("one of " + ", ".join(repr(c) for c in choices).replace("'", '"'))
    ]


Bool = Annotated[bool, Strict(), expect("true or false")]
Text = Annotated[str, Strict(), Field(min_length=1), expect("a non-empty string")]


def invalid(message: str, key: str | int | None = None) -> PydanticCustomError:
    """An error raised by a cross-field check (``model_validator``): its message is shown as is, at the model's key
    path plus ``key`` when given."""
    return PydanticCustomError("invalid", "{message}", {"message": message, "key": key})


# ------------------------------------------------------------------------------------------------ errors
def show(value: Any, limit: int = 60) -> str:
    """A JSON-looking, bounded rendering of a bad value for an error line."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def key_path(loc: tuple[Any, ...]) -> str:
    """``('frames', 3, 'transform_matrix')`` -> ``frames[3].transform_matrix``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe(error: dict[str, Any]) -> str:
    """One pydantic error as ``expected ..., got ...`` (or the cross-field check's own message)."""
    kind, value = error["type"], error.get("input")
    if kind == "invalid":
        return str(error["msg"])
    if kind == "missing":
        return "required key is missing"
    if kind == "expected":
        return f"{error['msg']}, got {show(value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected an object, got {show(value)}"
    if kind == "list_type":
        return f"expected a list, got {show(value)}"
    if kind == "too_short":
        n = error.get("ctx", {}).get("min_length", 1)
        return f"expected at least {n} {'entry' if n == 1 else 'entries'}, got {show(value)}"
    msg = str(error.get("msg", kind))
    msg = msg.removeprefix("Value error, ")
    return f"{msg[:1].lower()}{msg[1:]}, got {show(value)}"


def one_line(exc: ValidationError, source: str) -> str:
    """The first error of ``exc`` as one line, with ``(and N more)`` when there are others."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    if first["type"] == "invalid" and (first.get("ctx") or {}).get("key") is not None:
        loc += (first["ctx"]["key"],)
    where = key_path(loc)
    text = f"{source}: {where}: {describe(first)}" if where else f"{source}: {describe(first)}"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more)"
    return text.replace("\n", " ")


def unknown_keys(model: BaseModel, prefix: str = "") -> list[str]:
    """Key paths of values no schema declares (list indices shown as ``[]``), minus each model's ``IGNORED``."""
    found: list[str] = []
    ignored = getattr(model, "IGNORED", frozenset())
    for key in model.model_extra or {}:
        if key not in ignored:
            found.append(f"{prefix}{key}")
    for name in type(model).model_fields:
        value = getattr(model, name)
        items = value if isinstance(value, list) else [value]
        suffix = "[]" if isinstance(value, list) else ""
        for item in items:
            if isinstance(item, BaseModel):
                for path in unknown_keys(item, f"{prefix}{name}{suffix}."):
                    if path not in found:
                        found.append(path)
    return found


def validate(schema: type[M], data: Any, source: str, error: type[NgpError] = NgpError) -> M:
    """Check ``data`` (parsed JSON) against ``schema``; a failure is ``error`` with one line naming ``source``, the key
    path and the expected value. Unknown keys are logged once (one warning line), not rejected."""
    try:
        model = schema.model_validate(data)
    except ValidationError as exc:
        raise error(one_line(exc, source)) from None
    except RecursionError:
        raise error(f"{source}: nested too deeply") from None
    extra = unknown_keys(model)
    if extra:
        more = f" (and {len(extra) - 8} more)" if len(extra) > 8 else ""
        log.warning("%s: ignoring unknown keys: %s%s", source, ", ".join(extra[:8]), more)
    return model


# ------------------------------------------------------------------------------------------------ JSON files
def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), computed without recursion."""
    depth, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        depth = max(depth, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return depth


def parse_json(text: str, source: str, error: type[NgpError] = NgpError) -> Any:
    """Parse JSON text; syntax errors, absurd nesting and recursion overflows become one-line ``error``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{source}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None
    except RecursionError:
        raise error(f"{source}: JSON nested too deeply") from None
    if json_depth(data) > MAX_JSON_DEPTH:
        raise error(f"{source}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return data


def read_json(path: str | Path, error: type[NgpError] = NgpError, source: str | None = None) -> Any:
    """Read and parse a JSON file (UTF-8, a byte-order mark allowed); every failure is one line naming the file."""
    p = Path(path)
    where = source or str(p)
    try:
        size = p.stat().st_size
        if size > MAX_JSON_BYTES:
            raise error(f"{where}: {size} bytes is too large for a JSON file")
        raw = p.read_bytes()
    except FileNotFoundError:
        raise error(f"{where}: no such file") from None
    except IsADirectoryError:
        raise error(f"{where}: is a folder, expected a JSON file") from None
    except OSError as exc:
        raise error(f"{where}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{where}: not UTF-8 text (byte {exc.start})") from None
    return parse_json(text, where, error)


# ------------------------------------------------------------------------------------------------ arrays
def _finite_row(v: Any, n: int | tuple[int, ...]) -> list[float]:
    sizes = (n,) if isinstance(n, int) else n
    if not isinstance(v, list) or len(v) not in sizes:
        raise ValueError("wrong length")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
        raise ValueError("not finite")
    return [float(x) for x in v]


def finite_matrix(shapes: tuple[tuple[int, int], ...]) -> Callable[[Any], list[list[float]]]:
    """A validator for a list of lists of finite numbers of one of ``shapes`` (rows, cols); returns it as floats."""

    def check(v: Any) -> list[list[float]]:
        if not isinstance(v, list) or not v or not isinstance(v[0], list) or (len(v), len(v[0])) not in shapes:
            raise ValueError("wrong shape")
        return [_finite_row(row, len(v[0])) for row in v]

    return check


def Vector(n: int | tuple[int, ...], what: str = "finite numbers") -> Any:
    """A list of ``n`` (or any of the lengths ``n``) finite JSON numbers."""
    count = n if isinstance(n, int) else " or ".join(map(str, n))
    return Annotated[Any, AfterValidator(lambda v: _finite_row(v, n)), expect(f"a list of {count} {what}")]


def Matrix(rows: int, cols: int, what: str = "finite numbers") -> Any:
    """A ``rows`` x ``cols`` list of lists of finite JSON numbers."""
    return Annotated[Any, AfterValidator(finite_matrix(((rows, cols),))), expect(f"a {rows}x{cols} matrix of {what}")]
