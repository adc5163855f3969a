"""What a delivery is, as the side-effect rules see it: its input class and its standing.

The **class** is what the body is about: a call status kind with its outcome (``prompt/answered``,
``code/call-error`` ...), ``keypress`` or ``failure`` (``contract.input_classes()`` lists them), or ``""``
when the body names no callback. The **standing** is how far it is from what the provider sends, ranked by
the harm of acting on it (CONTRACT.md rule 7):

- ``valid``: ``parse_callback`` accepts it; acting on it is the handler's job;
- ``questionable``: a callback with something wrong inside (a missing, null or mistyped field, a value
  out of range, two kinds at once, a size over the limit), or a valid callback in another JSON encoding
  (UTF-16/32, a byte-order mark, a broken UTF-8 character): acting on it is a risk, a warning;
- ``unprocessable``: no callback at all (not JSON, not an object, no known kind, the callback not an
  object, empty): acting on it always fails;
- ``repeat``: an exact repeat of a delivery already made (set by the suite, not read from the body).

The standing is read from the bytes alone, so it never disagrees with what was sent. It is about effects;
the reply rules (2 and 3) split the corpus by what the reply must be instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from pytest_voicecb.contract import CALLBACK_MODELS, MAX_BODY_SIZE, CallbackError, kind_info, parse_callback

__all__ = ["Input", "Standing", "classify", "decoded"]

Standing = Literal["valid", "questionable", "unprocessable", "repeat"]


class Input(NamedTuple):
    """A delivery's ``cls`` (``"prompt/not-answered"``, ``"failure"``; ``""`` when unknown), ``standing``,
    ``encoding`` (True when only another JSON encoding made it readable) and ``callid`` (when it names one
    within the size limit: the call ``prepare`` registers)."""

    cls: str
    standing: Standing
    encoding: bool = False
    callid: str | None = None

    def repeated(self) -> Input:
        """The same input delivered again."""
        return self._replace(standing="repeat")

    def describe(self) -> str:
        """``a valid prompt/not-answered``, ``a repeat of a keypress``, ``a body that is no callback``."""
        if self.standing == "unprocessable" or not self.cls:
            return "a body that is no callback at all" if self.standing == "unprocessable" else "an unreadable body"
        if self.standing == "repeat":
            return f"a repeat delivery of callid {self.callid} (a {self.cls})"
        if self.encoding:
            return f"a {self.cls} in another JSON encoding"
        return f"a {self.standing} {self.cls}"


def classify(body: bytes | bytearray | str | Mapping[str, Any]) -> Input:
    """The class and standing of a body, from its bytes (or an already-decoded payload)."""
    try:
        data, encoding = decoded(body)
    except RecursionError:  # nested deeper than a parser should follow: cannot tell what it holds
        return Input("", "questionable")
    except ValueError:
        return Input("", "unprocessable")
    if not isinstance(data, dict):
        return Input("", "unprocessable")
    kinds = [key for key in data if key in CALLBACK_MODELS]
    if not kinds or not any(isinstance(data[kind], dict) for kind in kinds):
        return Input("", "unprocessable")
    kind = next(kind for kind in kinds if isinstance(data[kind], dict))
    fields: dict[str, Any] = data[kind]
    callid = fields.get("callid")
    named = callid if isinstance(callid, str) and callid else None
    cls = _class_of(kind, fields)
    if encoding:
        return Input(cls, "questionable", True, named)
    if not isinstance(body, Mapping) and len(body) > MAX_BODY_SIZE:
        return Input(cls, "questionable", False, None)  # over the size limit: the provider never sends it
    try:
        parse_callback(data)
    except CallbackError:
        return Input(cls, "questionable", False, named)
    return Input(cls, "valid", False, named)


def decoded(body: bytes | bytearray | str | Mapping[str, Any]) -> tuple[object, bool]:
    """The JSON value of a body, and whether reading it took another encoding than plain UTF-8; raises
    ``ValueError`` (or ``RecursionError``) when no reader makes JSON of it."""
    if isinstance(body, Mapping):
        return body, False
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    return _decode(raw)


def _decode(raw: bytes) -> tuple[object, bool]:
    """The JSON value and whether reading it took another encoding than plain UTF-8."""
    try:
        return json.loads(raw.decode("utf-8")), False
    except UnicodeDecodeError:
        pass
    except ValueError:
        if not raw.startswith(b"\xef\xbb\xbf"):
            raise
    try:
        return json.loads(raw), True  # what Python's json.loads(bytes) makes of UTF-16/32 and a BOM
    except (UnicodeDecodeError, ValueError):
        return json.loads(raw.decode("utf-8", "replace")), True  # a lenient reader's view of broken UTF-8


def _class_of(kind: str, fields: Mapping[str, Any]) -> str:
    info = kind_info(kind)
    if not info.outcomes:
        return info.short
    result = fields.get("result")
    if isinstance(result, int) and not isinstance(result, bool):
        result = str(result)  # the number 0 seen in the wild means what "0" means
    outcome = info.outcomes.get(result) if isinstance(result, str) else None
    return f"{info.short}/{outcome}" if outcome else info.short
