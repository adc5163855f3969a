"""Side effects (CONTRACT.md rule 7): watching what a handler does, and the verdict on each change.

``Watcher`` wraps the test's two hooks: ``effects`` (a callable returning a comparable snapshot of what the
handler did: calls placed, rows written) and ``prepare`` (called with each body before its call's first
delivery, to create the record a handler that acts only on calls it placed looks up). ``EffectsOn`` is the
declared expectation: the input classes whose first valid delivery should change the snapshot.
``judge_change`` decides, by harm:

- fail: a change on a repeat delivery, on a body that is no callback at all, on a class outside
  ``effects_on``; no change on a valid first delivery of a class in ``effects_on``;
- warn (fail under ``strict``): a change on a questionable callback (a missing, null or mistyped field,
  another JSON encoding) whose class ``effects_on`` allows or cannot tell;
- reported, not judged: changes on valid input when no ``effects_on`` is declared.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from pytest_voicecb._text import one_line, plural, safe, shorten
from pytest_voicecb.conformance.inputs import Input
from pytest_voicecb.contract import input_classes

__all__ = [
    "EffectsFailed",
    "EffectsOn",
    "Finding",
    "StopRun",
    "Watcher",
    "called",
    "diff",
    "judge_change",
    "name_of",
]

PREPARE_HINT = (
    "does the handler know this callid? A handler that acts only on calls it placed needs prepare to "
    "register each callback's call first (the voicecb_prepare fixture, prepare=, or voicecb check "
    "--prepare-url / --prepare-cmd)"
)


class StopRun(Exception):
    """A hook the whole run depends on cannot work (an effects endpoint that fails, a prepare that
    answers non-2xx): the run stops with this one error instead of failing every check alike."""


class EffectsFailed(Exception):
    """The ``effects`` or ``prepare`` callable raised or returned something that cannot be compared:
    the check fails naming it (``args[0]`` the message, ``args[1]`` the cause it groups under)."""


class Finding(NamedTuple):
    """One verdict on a check: ``outcome`` (``failed`` or ``warned``), the ``rule`` broken, the ``cause`` it
    groups under, a one-line ``message``, the ``problems`` and what was ``expected``."""

    outcome: str
    rule: int
    cause: str
    message: str
    problems: tuple[str, ...] = ()
    expected: str = ""


class EffectsOn:
    """The classes whose first delivery of a valid callback should change the snapshot (``effects_on``).

    A bare kind (``"failure"``, ``"prompt"``) means all its outcomes. ``None`` declares nothing: changes
    are then reported, not judged. An unknown class is a ``ValueError`` naming the known ones.
    """

    def __init__(self, classes: Iterable[str] | str | None = None) -> None:
        self.declared = classes is not None
        if isinstance(classes, str):
            classes = [classes]
        known = self.known = input_classes()
        bare = {name.partition("/")[0] for name in known}
        wanted: list[str] = []
        for name in classes or ():
            if not isinstance(name, str):
                raise TypeError(f"effects_on takes input class names (str), got {name!r}")
            cleaned = name.strip()
            if cleaned in bare:
                wanted += [c for c in known if c == cleaned or c.startswith(cleaned + "/")]
            elif cleaned in known:
                wanted.append(cleaned)
            else:
                raise ValueError(
                    f"effects_on: unknown input class {name!r}; known: {', '.join(known)} "
                    f"(or a bare kind: {', '.join(sorted(bare))})"
                )
        self.classes: tuple[str, ...] = tuple(cls for cls in known if cls in wanted)
        self.given: tuple[str, ...] = tuple(classes or ())

    def allows(self, cls: str) -> bool:
        return cls in self.classes

    def knows(self, cls: str) -> bool:
        """Whether ``cls`` is a full class (a kind with its outcome), so that allowed-or-not is decidable."""
        return cls in self.known

    def __repr__(self) -> str:
        return f"EffectsOn({list(self.given)!r})" if self.declared else "EffectsOn(None)"

    def words(self) -> str:
        return ", ".join(self.given) if self.given else "nothing"


def called(name: str) -> str:
    """How a sentence names the snapshot: ``dialled()`` for a function, ``GET /_test/effects`` as it is."""
    return f"{name}()" if name.isidentifier() else name


def name_of(hook: object, given: str | None = None, default: str = "effects") -> str:
    """How messages name a hook: ``given``, else its function's name (never ``<locals>`` or ``<lambda>``)."""
    if given:
        return given
    name = getattr(hook, "__name__", None)
    if isinstance(name, str) and name and not name.startswith("<"):
        return name
    if name == "<lambda>" or callable(hook):
        return default  # a lambda's enclosing function would name the wrong thing
    return one_line(safe(repr(hook)), 60)


class Watcher:
    """The run's window on the handler: snapshots (``effects``) and call records (``prepare``)."""

    def __init__(
        self,
        effects: Callable[[], object] | None,
        prepare: Callable[[dict[str, Any]], object] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        if effects is not None and not callable(effects):
            raise TypeError(f"effects must be a callable returning a snapshot of what the handler did, got {effects!r}")
        if prepare is not None and not callable(prepare):
            raise TypeError(f"prepare must be a callable taking the callback about to be delivered, got {prepare!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"effects_name must be a str, got {name!r}")
        self.effects = effects
        self.prepare_hook = prepare
        self.name = name_of(effects, name) if effects is not None else ""

    @property
    def watching(self) -> bool:
        return self.effects is not None

    def snapshot(self) -> object:
        effects = self.effects
        assert effects is not None
        try:
            snapshot = effects()
        except StopRun:
            raise
        except Exception as exc:
            raise EffectsFailed(
                f"the effects callable {self.name} raised {one_line(repr(exc), 200)}",
                f"the effects callable failed: {self.name}",
            ) from None
        try:
            return _copied(snapshot)  # a live list would otherwise change under our feet
        except Exception:
            return snapshot

    def prepare(self, payload: Mapping[str, Any]) -> None:
        """Hand ``payload`` (a fresh copy: the hook may keep it) to ``prepare``, if there is one."""
        hook = self.prepare_hook
        if hook is None:
            return
        try:
            hook(copy.deepcopy(dict(payload)))
        except StopRun:
            raise
        except Exception as exc:
            name = name_of(hook, default="prepare")
            raise EffectsFailed(
                f"the prepare callable {name} raised {one_line(repr(exc), 200)}", f"the prepare callable failed: {name}"
            ) from None

    def change(self, before: object, after: object) -> str | None:
        """None when the snapshots are equal; else what changed."""
        try:
            same = bool(before == after)
        except Exception as exc:
            message = (
                f"the effects callable {self.name} returned snapshots that cannot be compared: "
                f"{one_line(repr(exc), 200)}"
            )
            raise EffectsFailed(message, f"the effects callable failed: {self.name}") from None
        return None if same else diff(before, after)


_ATOMS = frozenset({str, int, float, bool, bytes, type(None)})


def _copied(value: object) -> object:
    """A deep copy of a snapshot, fast for what snapshots are made of (lists, dicts and tuples of strings
    and numbers; immutable parts are shared, not copied); anything else through ``copy.deepcopy``."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is tuple:
        items: tuple[object, ...] = value  # type: ignore[assignment]
        return value if all(type(item) in _ATOMS for item in items) else tuple(_copied(item) for item in items)
    if kind is list:
        return [_copied(item) for item in value]  # type: ignore[attr-defined]
    if kind is dict:
        return {key: _copied(item) for key, item in value.items()}  # type: ignore[attr-defined]
    if kind is frozenset or (kind is set and all(type(item) in _ATOMS for item in value)):  # type: ignore[attr-defined]
        return set(value) if kind is set else value  # type: ignore[call-overload]
    return copy.deepcopy(value)


def judge_change(
    delivery: Input,
    change: str | None,
    expect: EffectsOn,
    name: str,
    *,
    strict: bool = False,
    required: bool = True,
) -> Finding | None:
    """The verdict on what one delivery did to the snapshot (``change``: None when nothing), or None when
    it is right (or only to be reported). ``required=False``: an allowed class may act but need not (the
    second callback of a call that already acted, a corpus case)."""
    what = called(name)
    if change is None:
        if delivery.standing == "valid" and required and expect.declared and expect.allows(delivery.cls):
            message = f"expected an effect and saw none: {delivery.describe()} left {what} unchanged; {PREPARE_HINT}"
            return Finding(
                "failed",
                7,
                f"an expected effect was missing: {delivery.cls} left {what} unchanged",
                message,
                (f"{what} unchanged",),
                f"effects_on allows {expect.words()}: a first delivery of a valid {delivery.cls} acts",
            )
        return None
    if delivery.standing == "repeat":
        return _fail(f"a repeat delivery changed {what}", f"{delivery.describe()} changed {what}: {change}", change)
    if delivery.standing == "unprocessable":
        return _fail(
            f"a body that is no callback at all changed {what}",
            f"{delivery.describe()} changed {what}: {change}",
            change,
        )
    outside = expect.declared and expect.knows(delivery.cls) and not expect.allows(delivery.cls)
    if outside:
        return _fail(
            f"a {delivery.cls} changed {what} (outside effects_on)",
            f"{delivery.describe()} changed {what}: {change}; effects_on allows {expect.words()}",
            change,
            f"effects_on allows {expect.words()}: a {delivery.cls} must leave {what} unchanged",
        )
    if delivery.standing == "questionable":
        cause = f"a questionable callback{' in another encoding' if delivery.encoding else ''} changed {what}"
        return Finding(
            "failed" if strict else "warned",
            7,
            cause,
            f"{delivery.describe()} changed {what}: {change}",
            (f"{what}: {change}",),
            "input the provider never sends should not act (acting on it is a risk; strict fails it)",
        )
    return None


def _fail(cause: str, message: str, change: str, expected: str = "") -> Finding:
    expected = expected or "this delivery must leave the snapshot unchanged"
    return Finding("failed", 7, cause, message, (change,), expected)


# ---- what changed ---------------------------------------------------------------------------------


def diff(before: object, after: object, limit: int = 600) -> str:
    """What changed between two snapshots, items first: added and removed items of a list, set or tuple,
    changed keys of a dict (recursively one level), else ``before -> after``. Each item is cut on its own,
    so the added item is always shown."""
    try:
        if isinstance(before, dict) and isinstance(after, dict):
            return _join(_dict_changes(before, after), limit)
        if _collection(before) and _collection(after):
            return _join(_items_changed(before, after), limit)  # type: ignore[arg-type]
    except Exception:  # an odd snapshot type: fall back to showing both
        pass
    return f"{_cut(before)} -> {_cut(after)}"


def _collection(value: object) -> bool:
    return isinstance(value, (list, tuple, set, frozenset))


def _dict_changes(before: dict[Any, Any], after: dict[Any, Any]) -> list[str]:
    changes: list[str] = []
    for key in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(key, _ABSENT), after.get(key, _ABSENT)
        if old == new:
            continue
        if old is _ABSENT:
            changes.append(f"{_cut(key)} added: {_cut(new)}")
        elif new is _ABSENT:
            changes.append(f"{_cut(key)} removed (was {_cut(old)})")
        elif _collection(old) and _collection(new):
            changes.append(f"{_cut(key)}: " + "; ".join(_items_changed(old, new)))
        elif isinstance(old, dict) and isinstance(new, dict):
            changes.append(f"{_cut(key)}: {{" + "; ".join(_dict_changes(old, new)) + "}")
        else:
            changes.append(f"{_cut(key)}: {_cut(old)} -> {_cut(new)}")
    return changes


def _items_changed(before: Iterable[object], after: Iterable[object]) -> list[str]:
    added, removed = _minus(after, before), _minus(before, after)
    parts = []
    if added:
        parts.append(f"added {plural(len(added), 'item')}: {', '.join(map(_cut, added[:3]))}")
    if removed:
        parts.append(f"removed {plural(len(removed), 'item')}: {', '.join(map(_cut, removed[:3]))}")
    return parts or ["the same items in another order"]


def _join(parts: list[str], limit: int) -> str:
    text = "; ".join(parts)
    return text if len(text) <= limit else shorten(text, limit)


def _cut(value: object, limit: int = 160) -> str:
    return shorten(safe(repr(value)), limit)


_ABSENT: Any = object()


def _minus(these: Iterable[object], those: Iterable[object]) -> list[object]:
    """Items of ``these`` not matched by an item of ``those`` (a multiset difference, by equality)."""
    rest = list(those)
    out = []
    for item in these:
        for index, other in enumerate(rest):
            if item == other:
                del rest[index]
                break
        else:
            out.append(item)
    return out


def jsonable(value: object) -> object:
    """``value`` if JSON can carry it, else its repr."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
