"""A campaign's end, as a load test: 50,000 calls ending in ten minutes, every callback judged.

The team's own locustfile, built on ``VoiceCallbackUser``: the traffic shape is theirs (about 83
callbacks a second in all, the provider's retries as 15% duplicates, a failure callback for one call
in five), the verdicts are the contract's. Against the Flask example (from ``examples/``)::

    flask --app flask_handler.app run --port 8000 &
    locust -f load/locustfile.py --host http://127.0.0.1:8000 --headless -u 100 -r 20 -t 10m

``-u 100`` users, each posting at most 0.83 callbacks a second, is 50,000 callbacks in ten minutes.
Scale out with Locust's distributed mode (``--master`` here, ``--worker --master-host HOST`` on other
machines): the options and this file go to the workers, and every worker judges its own replies.
"""

from __future__ import annotations

from locust import constant_throughput

# The module, not the class: Locust runs every User class it finds in this file's namespace.
from pytest_voicecb.integrations import locust_users


class CampaignEnd(locust_users.VoiceCallbackUser):
    """The end of a notification campaign: many results at once, retries, and failed calls."""

    wait_time = constant_throughput(0.83)  # callbacks per second per user
    duplicate_share = 0.15  # the provider retries when a reply is late or not a success
    failure_share = 0.2  # one call in five fails (switched off, busy, out of coverage ...)
    deadline = 2.0  # seconds: the provider's timeout is unconfirmed, so this is our budget
    network_timeout = 5.0  # a hanging handler holds a user at most this long (counted as a failure)
