"""Profile formats: round trips, content detection, malformed input and ``greenflame export``."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.formats import canonical, make_profile

from greenflame.analyzer.formats import (
    FORMATS,
    collapsed,
    dump_profile,
    greenflame_json,
    load_profile,
    read_profile,
    speedscope,
)
from greenflame.analyzer.model import Frame, Profile, ProfileError, SampleType

# -- round trips --------------------------------------------------------------


def test_greenflame_json_round_trip_is_exact() -> None:
    p = make_profile()
    assert greenflame_json.loads(greenflame_json.dumps(p)) == p


def test_greenflame_json_document_matches_the_wire_format() -> None:
    document = json.loads(greenflame_json.dumps(make_profile()))
    assert document["format"] == "greenflame-profile" and document["version"] == 1
    assert document["sample_types"] == [{"name": "wall", "unit": "samples"}, {"name": "cpu", "unit": "samples"}]
    assert document["frames"][1] == {"function": "Service.handle", "file": "app/service.py", "line": 10}
    assert document["samples"][0] == {"stack": [0, 1], "values": [50, 30], "labels": {"lambda_phase": "invoke"}}
    assert "labels" not in document["samples"][3]


def test_pprof_round_trip_keeps_everything_but_unreferenced_frames() -> None:
    p = make_profile()
    q = read_profile(dump_profile(p, "pprof"))
    assert q.sample_types == p.sample_types
    assert canonical(q) == canonical(p)
    assert (q.group, q.start_time_unix_ns, q.duration_ns, q.sample_period_ns) == (
        p.group,
        p.start_time_unix_ns,
        p.duration_ns,
        p.sample_period_ns,
    )
    assert q.metadata == p.metadata


def test_speedscope_round_trip_keeps_types_stacks_and_group() -> None:
    p = make_profile()
    q = speedscope.loads(speedscope.dumps(p))
    assert q.sample_types == p.sample_types
    assert canonical(q) == canonical(p, labels=False)
    assert q.group == "orders-api"


def test_speedscope_document_is_one_sampled_profile_per_type() -> None:
    document = json.loads(speedscope.dumps(make_profile()))
    assert document["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    assert [(x["type"], x["name"], x["unit"]) for x in document["profiles"]] == [
        ("sampled", "wall", "none"),
        ("sampled", "cpu", "none"),
    ]
    cpu = document["profiles"][1]
    assert len(cpu["samples"]) == len(cpu["weights"]) and cpu["endValue"] == sum(cpu["weights"]) == 54
    assert document["shared"]["frames"][3] == {"name": "<native>"}
    assert document["activeProfileIndex"] == 1


@pytest.mark.parametrize("sample_type", ["cpu", "wall"])
def test_collapsed_round_trip_for_one_sample_type(sample_type: str) -> None:
    p = make_profile()
    q = collapsed.loads(collapsed.dumps(p, sample_type), sample_type=sample_type)
    assert q.sample_types == [SampleType(sample_type)]
    assert canonical(q) == canonical(p, labels=False, types=[sample_type])


def test_collapsed_writes_cpu_by_default_and_wall_when_cpu_is_all_zero() -> None:
    p = make_profile()
    text = collapsed.dumps(p).decode()
    assert "main (app.py:1);Service.handle (app/service.py:10) 30\n" in text
    assert "main (app.py:1);<native> 7" not in text  # zero CPU: left out
    p.samples = [s for s in p.samples if s.stack == (0, 3)]
    assert collapsed.dumps(p).decode() == "main (app.py:1);<native> 7\n"


def test_collapsed_parses_py_spy_raw_output() -> None:
    text = b'<module> (app.py:3);main (app.py:10);work (lib/x y.py:22) 7\n\nprocess 12:"python app.py";idle 2\n'
    q = read_profile(text)
    stacks = {tuple(f for f in frames): value for frames, value, _ in q.stacks()}
    assert stacks == {
        (Frame("<module>", "app.py", 3), Frame("main", "app.py", 10), Frame("work", "lib/x y.py", 22)): 7,
        (Frame('process 12:"python app.py"'), Frame("idle")): 2,
    }


def test_collapsed_replaces_characters_the_format_cannot_hold() -> None:
    p = Profile(sample_types=[SampleType("cpu")])
    p.add([Frame("a;b\nc")], [1])
    assert collapsed.dumps(p) == b"a,b c 1\n"


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_is_detected_plain_and_gzipped(fmt: str) -> None:
    p = make_profile()
    data = dump_profile(p, fmt)
    for blob in (data, gzip.compress(data)):
        q = read_profile(blob)
        wanted = ["cpu"] if fmt == "collapsed" else ["wall", "cpu"]
        assert canonical(q, labels=False, types=wanted) == canonical(p, labels=False, types=wanted)


def test_pprof_is_gzipped_and_detected_without_gzip() -> None:
    data = dump_profile(make_profile(), "pprof")
    assert data[:2] == b"\x1f\x8b"
    assert canonical(read_profile(gzip.decompress(data))) == canonical(make_profile())


# -- property-based round trip --------------------------------------------------

_names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
_frames = st.builds(Frame, _names, st.text(max_size=10), st.integers(0, 10**6))


@st.composite
def profiles(draw: Callable[..., Any]) -> Profile:
    frames = draw(st.lists(_frames, min_size=1, max_size=6, unique=True))
    p = Profile(
        group=draw(st.text(max_size=8)),
        start_time_unix_ns=draw(st.integers(0, 2**62)),
        duration_ns=draw(st.integers(0, 2**40)),
        sample_period_ns=draw(st.integers(0, 10**9)),
        metadata=draw(st.dictionaries(st.text(max_size=5).filter(lambda k: k not in _KNOWN_KEYS), _names, max_size=2)),
    )
    for _ in range(draw(st.integers(0, 8))):
        stack = draw(st.lists(st.sampled_from(frames), max_size=5))
        values = draw(st.lists(st.integers(0, 2**40), min_size=2, max_size=2))
        p.add(stack, values, draw(st.dictionaries(_names, _names, max_size=2)))
    return p


_KNOWN_KEYS = {"agent", "engine", "runtime", "hostname", "pid", "sample_rate_hz", "dropped", "lambda", "invocations"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profiles())
def test_property_round_trips(p: Profile) -> None:
    assert greenflame_json.loads(greenflame_json.dumps(p)) == p
    via_pprof = read_profile(dump_profile(p, "pprof"))
    assert canonical(via_pprof) == canonical(p)
    assert (via_pprof.group, via_pprof.metadata, via_pprof.sample_period_ns) == (
        p.group,
        p.metadata,
        p.sample_period_ns,
    )
    via_speedscope = read_profile(dump_profile(p, "speedscope"))
    assert canonical(via_speedscope) == canonical(p, labels=False)
    assert via_speedscope.group == p.group


# -- greenflame JSON validation ---------------------------------------------------


def _mutate(path: str, value: Any) -> Dict[str, Any]:
    """The test document with the field at dotted ``path`` set to ``value`` (``...`` deletes it)."""
    document = greenflame_json.profile_to_dict(make_profile())
    *parents, last = path.split(".")
    target: Any = document
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key: Any = int(last) if isinstance(target, list) else last
    if value is ...:
        del target[key]
    else:
        target[key] = copy.deepcopy(value)
    return document


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("format", "pprof", "format: expected 'greenflame-profile'"),
        ("format", ..., "format: required field is missing"),
        ("version", 3, "version: profile is format version 3"),
        ("version", "1", "version: expected an integer, got a string"),
        ("version", True, "version: expected an integer, got a boolean"),
        ("group", None, "group: expected a string, got null"),
        ("start_time_unix_ns", -1, "start_time_unix_ns: must be at least 0"),
        ("duration_ns", 1.5, "duration_ns: expected an integer, got a number"),
        ("sample_period_ns", ..., "sample_period_ns: required field is missing"),
        ("sample_types", [], "sample_types: must list at least one"),
        ("sample_types.1.name", "wall", "sample_types[1].name: duplicate sample type 'wall'"),
        ("sample_types.0.unit", ..., "sample_types[0].unit: required field is missing"),
        ("frames", {}, "frames: expected an array, got an object"),
        ("frames.2.function", 3, "frames[2].function: expected a string"),
        ("frames.1.line", -4, "frames[1].line: must be at least 0"),
        ("frames.0", "main", "frames[0]: expected an object, got a string"),
        ("samples.1.stack.2", 9, "samples[1].stack[2]: frame 9 does not exist (there are 4 frames)"),
        ("samples.1.stack.0", -1, "samples[1].stack[0]: must be at least 0"),
        ("samples.0.values", [1], "samples[0].values: has 1 values, expected one per sample type (2)"),
        ("samples.0.values.1", -5, "samples[0].values[1]: must be at least 0"),
        ("samples.0.labels.lambda_phase", 1, "samples[0].labels.lambda_phase: expected a string"),
        ("samples.2", ..., None),
        ("metadata", [], "metadata: expected an object, got an array"),
        ("metadata.pid", "4242", "metadata.pid: expected an integer"),
        ("metadata.sample_rate_hz", -1, "metadata.sample_rate_hz: must be a non-negative finite number"),
        ("metadata.dropped", {"aggregator_full": "3"}, "metadata.dropped.aggregator_full: expected an integer"),
        ("metadata.lambda.architecture", "sparc", "metadata.lambda.architecture: expected 'x86_64' or 'arm64'"),
        ("metadata.lambda.memory_size_mb", 1.5, "metadata.lambda.memory_size_mb: expected an integer"),
        ("metadata.invocations.durations_ms", [1, "x"], "metadata.invocations.durations_ms[1]: expected a number"),
        ("metadata.invocations", 3, "metadata.invocations: expected an object"),
    ],
)
def test_greenflame_json_rejects_each_bad_field(path: str, value: Any, message: Optional[str]) -> None:
    document = _mutate(path, value)
    if message is None:  # a valid change, to show that the mutation itself is harmless
        greenflame_json.profile_from_dict(document)
        return
    with pytest.raises(ProfileError) as caught:
        greenflame_json.profile_from_dict(document)
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_greenflame_json_ignores_unknown_fields_and_missing_optional_ones() -> None:
    document = greenflame_json.profile_to_dict(make_profile())
    document["future_field"] = {"x": 1}
    document["samples"][0]["weight_kg"] = 3
    del document["metadata"]
    del document["samples"][0]["labels"]
    q = greenflame_json.profile_from_dict(document)
    assert q.metadata == {} and q.samples[0].labels == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"format": "greenflame-profile",', "profile is not valid JSON"),
        (b"[1, 2]", "could not recognise"),
        (b'{"hello": 1}', "could not recognise the JSON document"),
        (b'{"format": "greenflame-profile", "version": 1}', "sample_types: required field is missing"),
        (b'{"format": "x\xff"}', "not valid UTF-8"),
        (b"[" * 100_000, "could not recognise"),
        (b"{" * 100_000, "not valid JSON"),
    ],
)
def test_malformed_json_is_a_profile_error(data: bytes, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        read_profile(data)


# -- collapsed and speedscope malformed input -------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"main;work 3\nmain;work\n", "line 2: expected 'frame;frame;... count', got 'main;work'"),
        (b"main;work 3\nmain;work x\n", "line 2: count 'x' is not a whole number"),
        (b"just some words\n", "could not recognise"),
    ],
)
def test_malformed_collapsed_is_a_profile_error(data: bytes, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        read_profile(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"main;work 3\nmain;work -2\n", "line 2: count '-2' is not a whole number"),
        (b"main;work 3\nonly-a-frame\n", "line 2: expected 'frame;frame;... count'"),
        (b"a 1\n\xff 2\n", "not valid UTF-8"),
    ],
)
def test_collapsed_reader_names_the_bad_line(data: bytes, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        collapsed.loads(data)


def _speedscope(profile: Dict[str, Any], frames: int = 3) -> bytes:
    document = {
        "$schema": speedscope.SCHEMA,
        "shared": {"frames": [{"name": f"f{i}", "file": "m.py", "line": i + 1} for i in range(frames)]},
        "profiles": [profile],
    }
    return json.dumps(document).encode()


def test_speedscope_evented_profile_weighs_stacks_by_duration() -> None:
    events = [
        {"type": "O", "frame": 0, "at": 0},
        {"type": "O", "frame": 1, "at": 1.5},
        {"type": "C", "frame": 1, "at": 4},
        {"type": "O", "frame": 2, "at": 4},
        {"type": "C", "frame": 2, "at": 4.25},
        {"type": "C", "frame": 0, "at": 5},
    ]
    data = _speedscope(
        {"type": "evented", "name": "t", "unit": "milliseconds", "startValue": 0, "endValue": 5, "events": events}
    )
    q = read_profile(data)
    assert q.sample_types == [SampleType("wall", "nanoseconds")]
    f0, f1, f2 = q.frames
    assert f1 == Frame("f1", "m.py", 2)
    assert {frames: value for frames, value, _ in q.stacks()} == {
        (f0,): 2_250_000,
        (f0, f1): 2_500_000,
        (f0, f2): 250_000,
    }


def test_speedscope_from_another_tool_labels_each_profile() -> None:
    document = json.loads(_speedscope({}))
    document["profiles"] = [
        {"type": "sampled", "name": "Thread 1", "unit": "none", "startValue": 0, "endValue": 3,
         "samples": [[0, 1], [0]], "weights": [2, 1]},
        {"type": "sampled", "name": "Thread 2", "unit": "none", "startValue": 0, "endValue": 4,
         "samples": [[0, 1]], "weights": [4]},
    ]  # fmt: skip
    q = read_profile(json.dumps(document).encode())
    assert q.sample_types == [SampleType("wall", "samples")]
    assert canonical(q) == {
        ((q.frames[0], q.frames[1]), (("speedscope_profile", "Thread 1"),)): (2,),
        ((q.frames[0],), (("speedscope_profile", "Thread 1"),)): (1,),
        ((q.frames[0], q.frames[1]), (("speedscope_profile", "Thread 2"),)): (4,),
    }


_SAMPLED = {"type": "sampled", "name": "p", "unit": "none", "startValue": 0, "endValue": 1}


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({**_SAMPLED, "samples": [[0, 7]], "weights": [1]}, r"samples\[0\]\[1\]: frame 7 does not exist"),
        ({**_SAMPLED, "samples": [[0]], "weights": [1, 2]}, "weights: has 2 entries but there are 1 samples"),
        ({**_SAMPLED, "samples": [[0]], "weights": [-1]}, r"weights\[0\]: must be a non-negative"),
        ({**_SAMPLED, "samples": [[0]], "weights": ["1"]}, r"weights\[0\]: expected a number"),
        ({**_SAMPLED, "weights": []}, "samples: required field is missing"),
        ({**_SAMPLED, "type": "flame", "samples": [], "weights": []}, "type: expected 'sampled' or 'evented'"),
        ({**_SAMPLED, "unit": "furlongs", "samples": [], "weights": []}, "unit: expected one of"),
        (
            {
                **_SAMPLED,
                "type": "evented",
                "events": [{"type": "O", "frame": 0, "at": 1}, {"type": "C", "frame": 1, "at": 2}],
            },
            "closes frame 1, which is not the innermost open frame",
        ),
        (
            {
                **_SAMPLED,
                "type": "evented",
                "events": [{"type": "O", "frame": 0, "at": 2}, {"type": "C", "frame": 0, "at": 1}],
            },
            "non-decreasing time order",
        ),
        ({**_SAMPLED, "type": "evented", "events": [{"type": "X", "frame": 0, "at": 0}]}, "expected 'O' or 'C'"),
    ],
)
def test_malformed_speedscope_is_a_profile_error(profile: Dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        read_profile(_speedscope(profile))


def test_speedscope_without_profiles_or_frames_is_a_profile_error() -> None:
    with pytest.raises(ProfileError, match="holds no profile"):
        read_profile(json.dumps({"$schema": speedscope.SCHEMA, "shared": {"frames": []}, "profiles": []}).encode())
    with pytest.raises(ProfileError, match="shared: required field is missing"):
        read_profile(json.dumps({"$schema": speedscope.SCHEMA, "profiles": []}).encode())


# -- detection, limits and files ---------------------------------------------------


def test_unrecognised_bytes_are_a_profile_error_naming_the_source() -> None:
    with pytest.raises(ProfileError, match=r"^blob\.bin: could not recognise the data as a profile"):
        read_profile(bytes(range(256)) * 4, source="blob.bin")


@pytest.mark.parametrize("data", [b"", b"  \n\t", gzip.compress(b"")])
def test_empty_input_is_a_profile_error(data: bytes) -> None:
    with pytest.raises(ProfileError, match="empty"):
        read_profile(data)


def test_decompressed_size_is_capped() -> None:
    bomb = gzip.compress(b"a 1\n" * 10_000)
    assert read_profile(bomb, max_bytes=40_000).total() == 10_000
    with pytest.raises(ProfileError, match="larger than the limit of 39999 bytes"):
        read_profile(bomb, max_bytes=39_999)
    with pytest.raises(ProfileError, match="larger than the limit"):
        read_profile(b"a 1\n" * 100, max_bytes=10)


def test_corrupt_and_truncated_gzip_are_profile_errors() -> None:
    data = gzip.compress(dump_profile(make_profile(), "json"))
    with pytest.raises(ProfileError, match="truncated"):
        read_profile(data[: len(data) // 2])
    with pytest.raises(ProfileError, match="corrupt gzip data"):
        read_profile(data[:10] + bytes(len(data) - 10))
    with pytest.raises(ProfileError, match="after the end of the gzip stream"):
        read_profile(data + b"junk")


def test_concatenated_gzip_members_are_read_whole() -> None:
    text = b"a;b 2\na 1\n"
    assert read_profile(gzip.compress(text[:6]) + gzip.compress(text[6:])).total() == 3


def test_load_profile_reads_files_and_names_the_path_on_error(tmp_path: Path) -> None:
    good = tmp_path / "p.json.gz"
    good.write_bytes(gzip.compress(dump_profile(make_profile(), "json")))
    assert load_profile(str(good)) == make_profile()
    empty = tmp_path / "empty.pb"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_bytes(b'{"format": "greenflame-profile", "version": 1, "sample_types": 3}')
    cases = {
        str(tmp_path / "missing.json"): "no such file",
        str(tmp_path): "is a directory",
        str(empty): "file is empty",
        str(corrupt): "sample_types: expected an array",
    }
    for path, message in cases.items():
        with pytest.raises(ProfileError) as caught:
            load_profile(path)
        assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_dump_profile_rejects_unknown_formats_and_inconsistent_profiles() -> None:
    with pytest.raises(ValueError, match="unknown profile format 'bmp'"):
        dump_profile(make_profile(), "bmp")
    broken = make_profile()
    broken.samples[0].stack = (0, 99)
    for fmt in FORMATS:
        with pytest.raises(ProfileError, match="frame 99"):
            dump_profile(broken, fmt)
