"""Agent configuration, declared once.

Every option is one field of :class:`Config` carrying its ``GREENFLAME_*`` variable, parser and
help text in the field metadata. Parsing (:meth:`Config.from_env`) and the documentation
(:func:`options_table`, :func:`options_markdown`) are both derived from those fields, so they
cannot drift apart.
"""

from __future__ import annotations

import os

# No typing, dataclasses or urllib at run time: the config is read on every cold start. mypy
# treats any name ``TYPE_CHECKING`` as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

    Parser = Callable[[Any], Any]

ENV_PREFIX = "GREENFLAME_"


class ConfigError(ValueError):
    """A configuration value is invalid; the message is one line for the user."""


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value.strip()


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, (int, float)) and kind is float:
        return float(value)
    if isinstance(value, int) and kind is int:
        return value
    try:
        return kind(_text(value))
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise ValueError(f"expected {noun}, got {value!r}") from None


def _bounded(kind: type, low: float, high: float) -> Parser:
    def parse(value: Any) -> Any:
        number = _number(value, kind)
        if not low <= number <= high:
            raise ValueError(f"expected a value from {low:g} to {high:g}, got {number!r}")
        return number

    return parse


def _optional_text(value: Any) -> Optional[str]:
    if value is None:
        return None
    return _text(value) or None


def _scheme_and_host(url: str) -> Tuple[str, str]:
    """``(scheme, netloc)`` as :func:`urllib.parse.urlsplit` finds them, without importing urllib
    (and the ipaddress, re and enum modules it pulls) on every cold start."""
    scheme, separator, rest = url.partition("://")
    if not separator or not scheme.isascii() or not scheme[:1].isalpha():
        return "", ""
    if any(not (c.isalnum() or c in "+-.") for c in scheme):
        return "", ""
    for stop in "/?#":
        rest = rest.partition(stop)[0]
    return scheme.lower(), rest


def _url(value: Any) -> Optional[str]:
    text = _optional_text(value)
    if text is None:
        return None
    scheme, netloc = _scheme_and_host(text)
    if scheme not in ("http", "https") or not netloc:
        raise ValueError(f"expected an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def _choice(*choices: str) -> Parser:
    def parse(value: Any) -> str:
        text = _text(value).lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return text

    return parse


def _s3_url(value: Any) -> Optional[str]:
    text = _optional_text(value)
    if text is None:
        return None
    scheme, netloc = _scheme_and_host(text)
    if scheme != "s3" or not netloc:
        raise ValueError(f"expected s3://BUCKET[/PREFIX], got {text!r}")
    return text.rstrip("/")


class _Field:
    """One declared option of :class:`Config`: its default, parser and help (the class attribute)."""

    __slots__ = ("default", "help", "parse")

    def __init__(self, default: Any, parse: Parser, help: str) -> None:
        self.default, self.parse, self.help = default, parse, help


def _option(default: Any, parse: Parser, help: str) -> Any:
    return _Field(default, parse, help)


class Config:
    """The agent's settings. Build it with :meth:`from_env`; the defaults suit a service.

    Immutable, compared by value. A small hand-written record rather than a dataclass: importing
    :mod:`dataclasses` (and :mod:`inspect` with it) would add milliseconds to every cold start.
    """

    enabled: bool = _option(True, _bool, "kill switch: false turns the agent off entirely")
    kill_file: Optional[str] = _option(
        None, _optional_text, "kill switch file: while it exists the agent samples nothing (checked every second)"
    )
    group: str = _option("", _text, "profiling group (service or function name) the samples belong to")
    server: Optional[str] = _option(None, _url, "greenflame server URL; reports go to {server}/api/v1/ingest")
    ingest_key: Optional[str] = _option(None, _optional_text, "ingest key sent as a bearer token to the server")
    out: Optional[str] = _option(None, _optional_text, "write reports to this file (.gz compresses)")
    s3: Optional[str] = _option(None, _s3_url, "upload reports to s3://BUCKET/PREFIX (needs boto3)")
    engine: str = _option("thread", _choice("thread", "pyinstrument"), "sampling engine: thread or pyinstrument")
    call_share: float = _option(
        0.1, _bounded(float, 0.0, 1.0), "pyinstrument engine: share of profile_call() calls profiled"
    )
    rate_hz: float = _option(100.0, _bounded(float, 0.1, 1000), "samples per second per thread")
    cpu_budget: float = _option(
        0.01,
        _bounded(float, 0.0001, 1.0),
        "CPU the agent may use (its threads and SIGPROF handler), in cores; above it the rate is lowered",
    )
    signal_trigger: bool = _option(
        True,
        _bool,
        "thread engine: while the main thread runs Python, it takes the samples from a SIGPROF timer "
        "instead of waking the sampler thread (much cheaper); false: the sampler thread only",
    )
    report_interval_s: float = _option(
        60.0, _bounded(float, 0.1, 86400), "seconds between two reports (86400, the most: none but the last)"
    )
    max_stacks: int = _option(10_000, _bounded(int, 1, 10_000_000), "distinct stacks kept per report")
    max_depth: int = _option(128, _bounded(int, 2, 10_000), "frames kept per stack (root side)")
    max_threads: int = _option(64, _bounded(int, 1, 100_000), "threads sampled per tick")
    auto_labels: bool = _option(True, _bool, "label samples with their thread's name and asyncio task's name")
    export_timeout_s: float = _option(5.0, _bounded(float, 0.1, 600), "timeout of one export attempt, in seconds")
    exit_timeout_s: float = _option(
        2.0, _bounded(float, 0.0, 600), "at interpreter exit, seconds the last report may take"
    )
    spool_dir: Optional[str] = _option(
        None, _optional_text, "where undelivered reports wait for the server (default: a temporary directory)"
    )
    spool_max_mb: float = _option(
        16.0, _bounded(float, 0.0, 100_000), "size cap of the spool; the oldest reports go first (0: no spool)"
    )
    debug: bool = _option(False, _bool, "log the agent's activity to standard error")

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, **overrides: Any) -> Config:
        """Read ``GREENFLAME_*`` variables from ``environ``; keyword ``overrides`` win.

        An override of ``None`` means "not given". Raises :class:`ConfigError` (one line)
        for an unknown option or a bad value.
        """
        env = os.environ if environ is None else environ
        known = {option.name: option for option in options_table()}
        for name in overrides:
            if name not in known:
                raise ConfigError(f"unknown agent option {name!r} (known: {', '.join(known)})")
        values: Dict[str, Any] = {}
        for name, option in known.items():
            if overrides.get(name) is not None:
                values[name] = _parse(option, overrides[name], name)
            elif option.variable in env:
                values[name] = _parse(option, env[option.variable], option.variable)
        return cls(**values)

    def __init__(self, **values: Any) -> None:
        fields = _fields()
        unknown = set(values) - set(fields)
        if unknown:
            raise TypeError(f"unknown Config fields: {', '.join(sorted(unknown))}")
        for name, declared in fields.items():
            object.__setattr__(self, name, values.get(name, declared.default))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Config is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Config is immutable: cannot delete {name!r}")

    def _values(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _fields())

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _fields())
        return f"Config({shown})"


def _fields() -> Dict[str, _Field]:
    """The declared options of :class:`Config` by name, in declaration order."""
    return {name: vars(Config)[name] for name in Config.__annotations__}


if TYPE_CHECKING:

    class Option(NamedTuple):
        """One documented option: its name, environment variable, type, default and help."""

        name: str
        variable: str
        type: str
        default: Any
        help: str
        parse: Parser

else:
    from collections import namedtuple

    Option = namedtuple("Option", "name variable type default help parse")
    Option.__doc__ = "One documented option: its name, environment variable, type, default and help."


def options_table() -> List[Option]:
    """Every option of :class:`Config`, in declaration order."""
    types = Config.__annotations__  # text, thanks to ``from __future__ import annotations``
    return [
        Option(
            name=name,
            variable=ENV_PREFIX + name.upper(),
            type=str(types[name]),
            default=field.default,
            help=field.help,
            parse=field.parse,
        )
        for name, field in _fields().items()
    ]


def options_markdown() -> str:
    """The options as a Markdown table, for the documentation."""
    rows = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for option in options_table():
        default = "" if option.default is None else str(option.default).lower()
        rows.append(f"| `{option.variable}` | {option.type} | {default} | {option.help} |")
    return "\n".join(rows) + "\n"


def _parse(option: Option, value: Any, where: str) -> Any:
    try:
        return option.parse(value)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
