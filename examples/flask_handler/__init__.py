"""A Flask application with a voice-callback handler done right."""
