"""The handler as a Django project: settings configured once, a URLconf, a view, ``get_wsgi_application()``.

``application`` serves the correct handler. ``create_app(*bugs)`` gives a WSGI app serving a broken
one through the same Django stack (it tells the view which handler to use through the environ).
"""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings

from tests.handlers.logic import Handler

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="pytest-voicecb-tests",
        ALLOWED_HOSTS=["localhost", "127.0.0.1", "testserver"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()

# Django's request machinery is imported once the settings exist.
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

CORRECT = Handler()
HANDLER_KEY = "voicecb.handler"


@csrf_exempt
@require_POST
def voice_callback(request: HttpRequest) -> HttpResponse:
    handler = request.META.get(HANDLER_KEY, CORRECT)
    status, content_type, body = handler(request.body)
    if isinstance(body, bytes):
        return HttpResponse(body, status=status, content_type=content_type)
    from django.http import StreamingHttpResponse

    return StreamingHttpResponse(body, status=status, content_type=content_type)


urlpatterns = [path("voice/callback", voice_callback)]

application: WSGIHandler = get_wsgi_application()


class BrokenDjangoApp:
    """Django's WSGI application serving ``Handler(*bugs)``."""

    def __init__(self, *bugs: str, delay: float = 0.0) -> None:
        self.handler = Handler(*bugs, delay=delay)

    def __repr__(self) -> str:
        return f"<Django app {self.handler!r}>"

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        environ[HANDLER_KEY] = self.handler
        return application(environ, start_response)


def create_app(*bugs: str, delay: float = 0.0) -> BrokenDjangoApp:
    return BrokenDjangoApp(*bugs, delay=delay)
