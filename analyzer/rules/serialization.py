"""Rules for serialisation on slow pure-Python paths: JSON and YAML.

Target frames were read from CPython 3.11's ``json/encoder.py``, ``json/decoder.py`` and
``json/scanner.py``, and PyYAML 6's ``yaml/`` package (pure-Python loader and dumper versus
``yaml/cyaml.py``'s libyaml-backed CLoader/CDumper).
"""

from __future__ import annotations

from .frames import ANY, FrameMatcher
from .pattern import Pattern, define

_CONTEXT = (
    "per invocation (samples of the Lambda handler's invoke phase) or per request (samples of a "
    "service's request context: a request label or a request-dispatch frame)"
)

# -- json-serialization-hot --------------------------------------------------------

JSON = Pattern(
    rule_id="json-serialization-hot",
    title="JSON encoded or decoded by the pure-Python code path",
    targets=(
        # json.dumps uses the C encoder (c_make_encoder) unless indent is set (pretty printing) or
        # the C accelerator is missing; these functions only run on the pure-Python path.
        FrameMatcher(
            "json/encoder.py",
            (
                "_make_iterencode.<locals>._iterencode",
                "_make_iterencode.<locals>._iterencode_dict",
                "_make_iterencode.<locals>._iterencode_list",
                "py_encode_basestring",
                "py_encode_basestring_ascii",
            ),
        ),
        # The decoder's pure-Python scanner: only without the C accelerator.
        FrameMatcher("json/scanner.py", ("py_make_scanner.<locals>.scan_once", "py_make_scanner.<locals>._scan_once")),
        FrameMatcher("json/decoder.py", ("py_scanstring", "JSONObject", "JSONArray")),
    ),
    expected_share=0.01,
    threshold_share=0.05,
    what="JSON is encoded by the pure-Python encoder (indent= pretty printing, or no C accelerator)",
    advice="Serve compact JSON (no indent=; in Flask leave app.json.compact unset outside debug) so that "
    "the C encoder runs, or use orjson, which pretty-prints in C.",
)

define(
    JSON,
    description=(
        "CPython's json module encodes with a C accelerator, except when indent= is given (pretty "
        "printing, Flask's JSON responses in debug mode or with app.json.compact = False) or when "
        "the accelerator is missing: then a Python generator runs per value, 5-10x slower. The "
        "decoder likewise falls back to a Python scanner without the accelerator. JSON through the C "
        "paths is not counted: serialising a response is the request's job."
    ),
    context=_CONTEXT,
    fix=JSON.advice,
    bad_example=(
        "import json\n\n"
        "def handler(event, context):\n"
        "    return {'statusCode': 200, 'body': json.dumps(load_rows(), indent=2)}  # Python encoder\n"
    ),
    good_example=(
        "import json\n\n"
        "def handler(event, context):\n"
        "    return {'statusCode': 200, 'body': json.dumps(load_rows(), separators=(',', ':'))}\n"
    ),
)

# -- yaml-pure-python --------------------------------------------------------------

YAML = Pattern(
    rule_id="yaml-pure-python",
    title="YAML parsed or emitted by PyYAML's pure-Python code",
    targets=(
        # With CLoader/CSafeLoader, libyaml reads, scans, parses and composes in C, and only the
        # constructors (yaml/constructor.py) run in Python; with CDumper the emitter and
        # serializer are C. These modules therefore only run on the pure-Python paths.
        FrameMatcher("yaml/reader.py", (ANY,)),
        FrameMatcher("yaml/scanner.py", (ANY,)),
        FrameMatcher("yaml/parser.py", (ANY,)),
        FrameMatcher("yaml/composer.py", (ANY,)),
        FrameMatcher("yaml/serializer.py", (ANY,)),
        FrameMatcher("yaml/emitter.py", (ANY,)),
    ),
    expected_share=0.01,
    threshold_share=0.05,
    what="YAML is scanned and parsed by PyYAML's pure-Python loader",
    advice="Use libyaml's loader: yaml.load(text, Loader=yaml.CSafeLoader) (and yaml.CSafeDumper to dump), "
    "falling back to SafeLoader only where libyaml is missing; better, parse the document once.",
)

define(
    YAML,
    description=(
        "yaml.safe_load and yaml.load with SafeLoader/FullLoader read, scan, parse and compose the "
        "document in Python, character by character: 10-30x slower than libyaml's CSafeLoader, which "
        "PyYAML's wheels include (yaml.__with_libyaml__)."
    ),
    context=_CONTEXT,
    fix=YAML.advice,
    bad_example=(
        "import yaml\n\n"
        "def handler(event, context):\n"
        "    rules = yaml.safe_load(event['body'])  # pure-Python scanner and parser\n"
    ),
    good_example=(
        "import yaml\n\n"
        "LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)\n\n"
        "def handler(event, context):\n"
        "    rules = yaml.load(event['body'], Loader=LOADER)  # libyaml\n"
    ),
)
