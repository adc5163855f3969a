"""A FastAPI (ASGI) application with a voice-callback handler that reads the raw body."""
