"""Peers' files: what flamegraph.pl and speedscope accept is accepted, other formats are named when refused.

The files in ``tests/analyzer/data/peers`` were written for this project in the shapes of the
peers' own test data: FlameGraph's ``test/results/perf-vertx-stacks-01-collapsed-*.txt`` (a stack
ending in a blank frame, ``;  3``), ``py-spy record --format raw`` (a sample without frames is the
line `` 1``), speedscope's ``sample/profiles/speedscope/invalid`` evented profiles, and pprof's
``profile/testdata`` legacy text profiles (``go.godoc.thread``, ``cppbench.heap``) and a callgrind
file like speedscope's ``sample/profiles/callgrind``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from greenflame.analyzer.errors import UserError
from greenflame.analyzer.formats import load_profile, read_profile
from greenflame.analyzer.model import ProfileError

DATA = Path(__file__).parent / "data" / "peers"


def _count_column_total(path: Path) -> int:
    """The sum of the last column of a folded-stacks file, as flamegraph.pl adds it up."""
    return sum(int(line.split()[-1]) for line in path.read_text().splitlines() if line.strip())


def _stacks(data: bytes) -> dict:
    profile = read_profile(data)
    return {tuple(frame.function for frame in frames): value for frames, value, _ in profile.stacks("cpu")}


# -- accepted ---------------------------------------------------------------------


def test_flamegraph_collapsed_with_blank_frame_names_keeps_every_count() -> None:
    path = DATA / "flamegraph-perf-collapsed.txt"
    profile = load_profile(str(path))
    assert profile.total("cpu") == _count_column_total(path) == 25
    stacks = {tuple(f.function for f in frames): value for frames, value, _ in profile.stacks("cpu")}
    write = next(stack for stack in stacks if "Lsun/nio/ch/FileDispatcherImpl:.write0" in stack)
    assert write[-1] == "<unknown>" and stacks[write] == 3  # "...write0;  3": a blank leaf frame
    swapper = next(stack for stack in stacks if stack[0] == "swapper")
    assert swapper == ("swapper", "cpu_bringup_and_idle", "<unknown>", "xen_hypercall_sched_op_[k]")


def test_pyspy_raw_empty_stack_lines_count_at_the_root() -> None:
    path = DATA / "pyspy-raw-empty-stack.txt"
    profile = load_profile(str(path))
    assert profile.total("cpu") == _count_column_total(path) == 80
    empty = [sample for sample in profile.samples if not sample.stack]
    assert len(empty) == 1 and empty[0].values == [3]  # " 1" and " 2" are one root sample
    parse = next(frames for frames, _, _ in profile.stacks("cpu") if frames and frames[-1].function == "parse")
    assert (parse[-1].file, parse[-1].line) == ("app.py", 9)


def test_a_file_that_starts_with_an_empty_stack_is_still_collapsed() -> None:
    assert _stacks(b" 4\nmain;work 6\n") == {(): 4, ("main", "work"): 6}


@pytest.mark.parametrize(
    ("data", "stack"),
    [
        (b"main;;work 3\n", ("main", "<unknown>", "work")),
        (b";main 3\n", ("<unknown>", "main")),
        (b"main; ;work 3\n", ("main", "<unknown>", "work")),
    ],
)
def test_empty_frame_names_are_unknown_frames(data: bytes, stack: tuple) -> None:
    assert _stacks(data) == {stack: 3}


def test_a_trailing_semicolon_ends_the_stack_as_in_flamegraph_pl() -> None:
    """Old py-spy versions wrote every frame followed by ``;``; Perl's split drops the empty end."""
    data = b"<module> (app.py:40);main (app.py:33); 7\n 2\n"
    assert _stacks(data) == {("<module>", "main"): 7, (): 2}


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_folded_stacks_with_a_byte_order_mark_are_read(encoding: str) -> None:
    """speedscope's sample/profiles/stackcollapse/simple-utf16-*.txt: a BOM, then UTF-16 text."""
    text = "a;b;c 1\na;b;c 1\na;b;d 4\na;b;c 3\na;b 5\n"
    bom = b"\xff\xfe" if encoding.endswith("le") else b"\xfe\xff"
    assert _stacks(bom + text.encode(encoding)) == {("a", "b", "c"): 5, ("a", "b", "d"): 4, ("a", "b"): 5}


def test_a_utf8_byte_order_mark_is_ignored() -> None:
    assert _stacks(b"\xef\xbb\xbfmain;work 2\n") == {("main", "work"): 2}


def test_balanced_speedscope_evented_profile_is_read() -> None:
    profile = load_profile(str(DATA / "speedscope-evented-balanced.json"))
    weights = {tuple(f.function for f in frames): value for frames, value, _ in profile.stacks("wall")}
    assert weights == {("main",): 20_000_000, ("main", "work"): 20_000_000}


# -- refused, with the format and the problem named ----------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "speedscope-evented-unbalanced.json",
            r"speedscope file: profiles\[0\]\.events: unbalanced, 1 frame\(s\) still open after the last event "
            r"\(innermost: frame 0\)",
        ),
        (
            "speedscope-evented-crossed.json",
            r"speedscope file: profiles\[0\]\.events\[2\]: closes frame 0, which is not the innermost open frame",
        ),
        ("go-threadcreate-debug1.txt", r"legacy pprof text profile .*go tool pprof -proto"),
        ("gperftools-heap.txt", r"legacy pprof text profile .*go tool pprof -proto"),
        ("callgrind.out.4242", r"callgrind \(valgrind\) profile, which greenflame does not read"),
    ],
)
def test_malformed_or_unread_peer_files_are_refused_by_name(name: str, message: str) -> None:
    path = DATA / name
    with pytest.raises(ProfileError, match=rf"^{path}: .*{message}") as caught:
        load_profile(str(path))
    assert isinstance(caught.value, UserError)
    assert "whole number" not in str(caught.value)


def test_a_go_legacy_profile_without_its_header_is_still_named() -> None:
    data = b"1 @ 0x45a1c3 0x45b2d4 0x461f00\n2 @ 0x45a1c3 0x45c7a2\n"
    with pytest.raises(ProfileError, match="legacy pprof text profile"):
        read_profile(data)


def test_greenflame_json_errors_name_the_format() -> None:
    with pytest.raises(ProfileError, match=r"^greenflame JSON: sample_types: required field is missing"):
        read_profile(b'{"format": "greenflame-profile", "version": 1}')


def test_bad_utf16_is_refused() -> None:
    with pytest.raises(ProfileError, match="not valid UTF-16"):
        read_profile(b"\xff\xfe" + "a 1\n".encode("utf-16-le") + b"\x00\xd8")


def test_collapsed_lines_stay_strict() -> None:
    """Accepting blank names does not accept lines without a count or a negative count."""
    with pytest.raises(ProfileError, match=r"collapsed stacks line 2: expected 'frame;frame;\.\.\. count'"):
        read_profile(b"main;work 3\nmain;work\n")
    with pytest.raises(ProfileError, match="collapsed stacks line 2: count '-2' is not a whole number"):
        read_profile(b"main;work 3\nmain;work -2\n")
