"""Rules for standard-library work repeated in the hot path: regex compilation, deep copies, strptime.

Target frames were read from CPython's ``re/__init__.py``, ``re/_compiler.py`` (3.11+;
``sre_compile.py`` before), ``copy.py`` and ``_strptime.py``.
"""

from __future__ import annotations

from .frames import FrameMatcher
from .pattern import Pattern, define

_CONTEXT = (
    "per invocation (samples of the Lambda handler's invoke phase) or per request (samples of a "
    "service's request context: a request label or a request-dispatch frame)"
)

# -- regex-compile-hot -------------------------------------------------------------

REGEX = Pattern(
    rule_id="regex-compile-hot",
    title="Regular expressions compiled again and again (re cache misses)",
    targets=(
        # re.compile/match/search/sub call re._compile, which returns a cached pattern when it can;
        # the compiler only runs on a cache miss.
        FrameMatcher("re/_compiler.py", ("compile",)),
        FrameMatcher("sre_compile.py", ("compile",)),
    ),
    expected_share=0.005,
    threshold_share=0.05,
    what="Regular expressions are compiled on the hot path (the re module's cache misses)",
    advice="Compile each pattern once with re.compile at module level and keep the compiled objects; "
    "do not build pattern strings per call.",
)

define(
    REGEX,
    description=(
        "The re module caches compiled patterns (512 entries in CPython 3.11, dropping the oldest "
        "when full), so calling re.search(pattern_string, ...) is cheap only while the program uses "
        "few distinct patterns. Patterns built per call (with data in them) or more patterns than the "
        "cache holds make every call parse and compile the expression again, 10-100x the cost of "
        "the match itself."
    ),
    context=_CONTEXT,
    fix=REGEX.advice,
    bad_example=(
        "import re\n\n"
        "def redact(text, names):\n"
        "    for name in names:  # one pattern string per name: cache misses past 512\n"
        "        text = re.sub(rf'\\b{re.escape(name)}\\b', '***', text)\n"
        "    return text\n"
    ),
    good_example=(
        "import re\n\n"
        "NAMES = re.compile(r'\\b(?:' + '|'.join(map(re.escape, KNOWN_NAMES)) + r')\\b')\n\n"
        "def redact(text):\n"
        "    return NAMES.sub('***', text)\n"
    ),
)

# -- deepcopy-hot ------------------------------------------------------------------

DEEPCOPY = Pattern(
    rule_id="deepcopy-hot",
    title="copy.deepcopy in the hot path",
    targets=(FrameMatcher("copy.py", ("deepcopy",)),),
    expected_share=0.01,
    threshold_share=0.05,
    what="Objects are deep-copied on the hot path",
    advice="Do not deep-copy per call: build new objects from immutable defaults, copy only the "
    "level you change ({**DEFAULTS, 'key': value}, copy.copy), or freeze shared data.",
)

define(
    DEEPCOPY,
    description=(
        "copy.deepcopy walks the whole object graph in Python, calling a function per object and "
        "keeping a memo dictionary: copying a large template or configuration per call costs far "
        "more than the work done on the copy."
    ),
    context=_CONTEXT,
    fix=DEEPCOPY.advice,
    bad_example=(
        "import copy\n\n"
        "def handler(event, context):\n"
        "    report = copy.deepcopy(TEMPLATE)  # the whole template, every call\n"
        "    report['title'] = event['title']\n"
    ),
    good_example=(
        "def handler(event, context):\n"
        "    report = {**TEMPLATE, 'title': event['title']}  # shares the unchanged parts\n"
    ),
)

# -- strptime-hot ------------------------------------------------------------------

STRPTIME = Pattern(
    rule_id="strptime-hot",
    title="datetime.strptime in the hot path",
    targets=(FrameMatcher("_strptime.py", ("_strptime_datetime", "_strptime_time", "_strptime")),),
    expected_share=0.01,
    threshold_share=0.05,
    what="Timestamps are parsed with strptime on the hot path",
    advice="Parse ISO 8601 timestamps with datetime.fromisoformat (implemented in C, about 10x faster); "
    "for other fixed formats slice the fields or cache parsed values.",
)

define(
    STRPTIME,
    description=(
        "datetime.strptime and time.strptime run _strptime.py in Python: a regular expression "
        "built from the format (cached) is matched, then each directive is converted field by "
        "field. datetime.fromisoformat parses ISO 8601 (any ISO format since Python 3.11) in C."
    ),
    context=_CONTEXT,
    fix=STRPTIME.advice,
    bad_example=(
        "from datetime import datetime\n\n"
        "def parse(rows):\n"
        "    return [datetime.strptime(r['at'], '%Y-%m-%dT%H:%M:%S%z') for r in rows]\n"
    ),
    good_example=(
        "from datetime import datetime\n\n"
        "def parse(rows):\n"
        "    return [datetime.fromisoformat(r['at']) for r in rows]\n"
    ),
)
