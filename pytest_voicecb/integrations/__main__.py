"""``python -m pytest_voicecb.integrations`` prints the shipped locustfile's path (for ``locust -f``)."""

from pytest_voicecb.integrations import LOCUSTFILE

print(LOCUSTFILE)
