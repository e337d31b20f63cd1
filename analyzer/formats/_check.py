"""Type checks for decoded JSON that fail with a one-line ProfileError naming the field."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from ..model import ProfileError

#: The largest integer the wire format accepts: databases store values as signed 64-bit integers.
INT64_MAX = 2**63 - 1

_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def describe(value: Any) -> str:
    """The JSON name of ``value``'s type, for error messages."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def fail(path: str, expected: str, value: Any) -> ProfileError:
    """The error for a field holding the wrong kind of value."""
    return ProfileError(f"{path}: expected {expected}, got {describe(value)}")


def field(obj: Mapping[str, Any], key: str, path: str) -> Any:
    """``obj[key]``; ProfileError naming ``path.key`` when it is missing."""
    if key not in obj:
        raise ProfileError(f"{join(path, key)}: required field is missing")
    return obj[key]


def join(path: str, key: str) -> str:
    """``path.key``, or ``key`` at the top level."""
    return f"{path}.{key}" if path else key


def integer(value: Any, path: str, minimum: Optional[int] = 0) -> int:
    """``value`` as an int (JSON booleans rejected) within int64, at least ``minimum`` unless that is None."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(path, "an integer", value)
    if minimum is not None and value < minimum:
        raise ProfileError(f"{path}: must be at least {minimum}, got {value}")
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise ProfileError(f"{path}: must fit a signed 64-bit integer (at most {INT64_MAX})")
    return value


def number(value: Any, path: str) -> float:
    """``value`` as a non-negative finite number (integer or float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(path, "a number", value)
    if not 0 <= value < float("inf"):
        raise ProfileError(f"{path}: must be a non-negative finite number, got {value}")
    return value


def string(value: Any, path: str) -> str:
    """``value`` as a str that is valid UTF-8 (a lone surrogate such as ``"\\ud800"`` is refused)."""
    if not isinstance(value, str):
        raise fail(path, "a string", value)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ProfileError(f"{path}: not valid UTF-8 (a lone surrogate at character {error.start})") from None
    return value


def array(value: Any, path: str) -> List[Any]:
    """``value`` as a list."""
    if not isinstance(value, list):
        raise fail(path, "an array", value)
    return value


def obj(value: Any, path: str) -> Dict[str, Any]:
    """``value`` as a dict (JSON object)."""
    if not isinstance(value, dict):
        raise fail(path, "an object", value)
    return value


def string_map(value: Any, path: str) -> Dict[str, str]:
    """``value`` as an object of string to string."""
    result = obj(value, path)
    for key, item in result.items():
        string(key, f"{path} key")
        string(item, join(path, key))
    return dict(result)
