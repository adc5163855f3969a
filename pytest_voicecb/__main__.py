"""``python -m pytest_voicecb``: the ``voicecb`` command."""

from pytest_voicecb.cli import main

raise SystemExit(main())
