"""Shared test settings for pytest-voicecb's own suite."""

from hypothesis import settings

# The suite runs on small shared CI machines: no per-example deadline (timing noise is not a bug),
# and a failing example is printed so that it can be pasted into a test.
settings.register_profile("voicecb", deadline=None, print_blob=True)
settings.load_profile("voicecb")
