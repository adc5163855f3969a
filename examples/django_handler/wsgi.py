"""The WSGI application, as ``django-admin startproject`` writes it; tests target it in-process."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_handler.settings")
application = get_wsgi_application()
