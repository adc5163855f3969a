"""Django is configured once, before any test imports a view; the target is the project's WSGI application."""

from __future__ import annotations

import os
from typing import Any

import django
import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_handler.settings")
django.setup()


@pytest.fixture
def voicecb_target() -> Any:
    from django_handler.wsgi import application

    return application
