"""Opt-in fits for the tools teams already use: Faker, Hypothesis and Locust.

Each module imports its library at the top, and nothing imports them but their users (or the
library's own entry point), so installing pytest-voicecb costs nothing for teams that do not use
them. This package itself imports nothing heavy.

- ``faker_provider``: ``VoiceCallbackProvider``, so ``fake.voiceprompt_callback()`` and friends work
  (also in factory_boy's ``factory.Faker``).
- ``strategies``: Hypothesis strategies for valid callbacks, request bodies and malformed input.
- ``locust_users``: ``VoiceCallbackUser``, a Locust user that posts callbacks and judges every reply;
  ``LOCUSTFILE`` is the path of a ready locustfile: ``locust -f <LOCUSTFILE> --host URL``.

The modules are named after the library plus a suffix, never after the library alone, because
``locust -f`` puts the locustfile's folder first on ``sys.path``: a ``faker.py`` there would be
imported instead of Faker.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["LOCUSTFILE"]

LOCUSTFILE = str(Path(__file__).with_name("locustfile.py"))
"""The shipped locustfile: ``locust -f "$(python -m pytest_voicecb.integrations)" --host URL``."""
