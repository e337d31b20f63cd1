"""Idle frames: is a thread that is off the CPU waiting for work (sleep, select, a lock, a queue)?

A thread blocked in C code (``time.sleep``, ``lock.acquire``, ``sock.recv``, ``selector.poll``)
shows its innermost *Python* frame stopped on the call instruction. The callee itself is not a
frame, so :class:`IdleClassifier` reads the bytecode of that frame: it walks back from the
call instruction over the arguments' stack effect to the instruction that loaded the callee, and
takes its name (``sleep`` in ``time.sleep(1)``, ``acquire`` in ``lock.acquire(timeout=t)``).
One disassembly per code object gives every idle offset in it (:func:`idle_offsets`), cached.

A sample is idle when the thread stands on a call to one of :data:`IDLE_CALLS`; such a sample is
never counted as CPU, whatever the thread's CPU clock says (see :mod:`.cpuprobe`). Python-level
waits need no special case: ``queue.Queue.get`` and
``threading.Event.wait`` end in ``Condition.wait`` on ``waiter.acquire()``, asyncio's loop in
``selectors.EpollSelector.select`` on ``self._selector.poll(...)``.
"""

from __future__ import annotations

from types import CodeType, FrameType

TYPE_CHECKING = False
if TYPE_CHECKING:
    import dis
    from typing import Dict, FrozenSet, List, Optional, Tuple

#: Names of calls that block waiting for something else to happen.
IDLE_CALLS = frozenset(
    {
        # sleeping
        "sleep",
        # select / poll / epoll / kqueue (selectors, asyncio)
        "select",
        "poll",
        "control",
        # locks, conditions, events, semaphores, joins, queues (Thread.join and Queue.get are
        # Python code that ends in these; the bare names "join" and "get" would also match
        # str.join and dict.get, calls that run on a CPU)
        "acquire",
        "wait",
        "wait_for",
        "_wait_for_tstate_lock",
        # sockets waiting for a peer
        "recv",
        "recv_into",
        "recvfrom",
        "recvfrom_into",
        "recvmsg",
        "accept",
        "_accept",
        # signals and child processes
        "sigwait",
        "sigtimedwait",
        "sigwaitinfo",
        "pause",
        "waitpid",
    }
)

_CALLS = {"CALL": 0, "CALL_FUNCTION": 0, "CALL_METHOD": 0, "CALL_FUNCTION_KW": 1, "CALL_KW": 1}
# Instructions between the last argument and the call that move nothing on the stack.
_NEUTRAL = frozenset({"PRECALL", "KW_NAMES", "CACHE", "EXTENDED_ARG", "NOP"})
_LOADERS = frozenset(
    {"LOAD_ATTR", "LOAD_METHOD", "LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_FAST", "LOAD_SUPER_ATTR"}
)
_CACHE_LIMIT = 5_000


def callee_name(code: CodeType, offset: int) -> Optional[str]:
    """The name of the function called by the call instruction at ``offset`` of ``code``, if plain.

    None when the instruction is not a call or the callee is not a simple name or attribute.
    """
    import dis  # not at import time (milliseconds of a cold start); the sampler thread loads it first

    instructions = list(dis.get_instructions(code))
    index = next((i for i, ins in enumerate(instructions) if ins.offset == offset), None)
    if index is not None and instructions[index].opname == "PRECALL" and index + 1 < len(instructions):
        # Python 3.11: once a call site is specialised for a builtin (``time.sleep``, a lock's
        # ``acquire``), PRECALL makes the call itself and skips the CALL: a thread blocked there
        # stands on the PRECALL.
        index += 1
    if index is None or instructions[index].opname not in _CALLS:
        return None
    return _callee_of(instructions, index)


def idle_offsets(code: CodeType) -> FrozenSet[int]:
    """The instruction offsets of ``code`` where a thread waits in a call to one of :data:`IDLE_CALLS`
    (each such call, and on Python 3.11 the PRECALL before it: see :func:`callee_name`).

    One disassembly answers for every offset of the code object: a CPU-bound thread is found at a
    different offset almost every sample, and decoding the code anew for each cost milliseconds.
    """
    import dis

    instructions = list(dis.get_instructions(code))
    found = set()
    for index, ins in enumerate(instructions):
        if ins.opname in _CALLS and _callee_of(instructions, index) in IDLE_CALLS:
            found.add(ins.offset)
            if index and instructions[index - 1].opname == "PRECALL":
                found.add(instructions[index - 1].offset)
    return frozenset(found)


def _callee_of(instructions: List[dis.Instruction], index: int) -> Optional[str]:
    call = instructions[index]
    return _loader_before(instructions, index, (call.arg or 0) + _CALLS[call.opname])


def _loader_before(instructions: List[dis.Instruction], index: int, need: int) -> Optional[str]:
    """Walk back from the call at ``index`` past ``need`` argument slots to the callee's loader."""
    position = index - 1
    while position >= 0 and instructions[position].opname in _NEUTRAL:
        position -= 1  # the call's own PRECALL / KW_NAMES
    import dis

    pushed = 0
    for ins in reversed(instructions[: position + 1]):
        if pushed >= need:
            if ins.opname == "PUSH_NULL":
                continue  # Python 3.13: the callable, then NULL, then the arguments
            if ins.opname in _LOADERS and isinstance(ins.argval, str):
                return ins.argval
            return None
        oparg = ins.arg if ins.opcode >= dis.HAVE_ARGUMENT else None
        try:
            pushed += dis.stack_effect(ins.opcode, oparg, jump=False)
        except ValueError:
            return None
    return None


class IdleClassifier:
    """``is_idle(frame)``: whether the innermost ``frame`` is stopped on a call in :data:`IDLE_CALLS`."""

    def __init__(self) -> None:
        # id(code) -> (code, its idle offsets); holding the code keeps its id from being reused.
        self._codes: Dict[int, Tuple[CodeType, FrozenSet[int]]] = {}

    def is_idle(self, frame: FrameType) -> bool:
        """Whether ``frame`` (a thread's innermost Python frame) waits in an idle call."""
        return self.is_idle_at(frame.f_code, frame.f_lasti)

    def is_idle_at(self, code: CodeType, offset: int) -> bool:
        """Whether the instruction at ``offset`` of ``code`` (where a thread stands) is an idle call."""
        entry = self._codes.get(id(code))
        return offset in (entry[1] if entry is not None else self._classify(code))

    def known_idle_at(self, code: CodeType, offset: int) -> bool:
        """:meth:`is_idle_at` from what is classified already (False for code not seen yet): for the
        SIGPROF handler, which must not disassemble."""
        entry = self._codes.get(id(code))
        return entry is not None and offset in entry[1]

    def _classify(self, code: CodeType) -> FrozenSet[int]:
        if len(self._codes) >= _CACHE_LIMIT:
            self._codes.clear()
        try:
            offsets = idle_offsets(code)
        except Exception:  # an unexpected bytecode shape: never idle, and do not look again
            offsets = frozenset()
        self._codes[id(code)] = (code, offsets)
        return offsets
