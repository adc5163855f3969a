"""The smallest Django settings that serve the callback view: no database, no middleware to get in the way.

CSRF protection does not apply to a server-to-server callback (the view is ``csrf_exempt``), and the
URL is protected the way the provider's contract suggests: a secret path or an IP allow-list.
"""

SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "django_handler.urls"
WSGI_APPLICATION = "django_handler.wsgi.application"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
# Django refuses larger bodies with an HTML 400 page; the view checks the size first and answers in JSON.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
