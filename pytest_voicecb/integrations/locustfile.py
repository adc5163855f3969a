"""Load-test a voice-callback handler with Locust: every kind of callback, every reply judged by the contract.

    locust -f "$(python -m pytest_voicecb.integrations)" --host http://127.0.0.1:8000 \\
        --headless -u 50 -r 10 -t 10m [--voicecb-path /voice/callback] [--voicecb-duplicates 0.1] \\
        [--voicecb-failures 0.1] [--voicecb-deadline 2] [--voicecb-seed N] [--voicecb-strict]

Scale out with Locust's own distributed mode: the same command with ``--master`` on one machine and
``--worker --master-host HOST`` on the others (``--processes -1`` runs one worker per core).
"""

from pytest_voicecb.integrations.locust_users import VoiceCallbackUser

__all__ = ["VoiceCallbackUser"]
