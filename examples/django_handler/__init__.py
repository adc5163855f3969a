"""A Django project with a voice-callback view, served through its WSGI application."""
