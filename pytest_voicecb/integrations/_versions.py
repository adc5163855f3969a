"""One check, one wording, for "this library is too old for what we use of it"."""

from __future__ import annotations

import re

__all__ = ["parse", "require"]


def parse(version: str) -> tuple[int, ...]:
    """The leading release numbers of ``version`` (``"6.170.17"`` -> ``(6, 170, 17)``, ``"2.0b1"`` -> ``(2, 0)``)."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", version)
    return tuple(int(part) for part in match.group(1).split(".")) if match else ()


def require(library: str, version: str, minimum: tuple[int, ...], extra: str, feature: str) -> None:
    """Raise ``ImportError`` naming the version needed when ``version`` of ``library`` is older than ``minimum``.

    ``feature`` says what we use that older versions lack; ``extra`` is the pytest-voicecb extra that
    installs a good version.
    """
    found = parse(version)
    if found and found >= minimum:
        return
    needed = ".".join(map(str, minimum))
    raise ImportError(
        f"pytest-voicecb needs {library}>={needed} for {feature}, found {library} {version or '(unknown version)'}; "
        f'upgrade with: pip install "{library}>={needed}" (or pip install "pytest-voicecb[{extra}]")'
    )
