"""The ``voicecb`` command (entry point ``pytest_voicecb.cli:main``; also ``python -m pytest_voicecb``).

A surface at the top of the package: ``voicecb`` holds the parser, ``check`` and ``send``; ``serve``,
``provider``, ``replay`` and ``forward`` the other commands; ``common`` the parser class, usage error and
argument types they share; ``output`` the queued printing and logging that never holds up a reply.
Nothing below the surfaces imports this package (``tests/test_import_graph.py``).
"""

from __future__ import annotations

from pytest_voicecb.cli.common import UsageError
from pytest_voicecb.cli.voicecb import build_parser, main

__all__ = ["UsageError", "build_parser", "main"]
