"""The old name of ``_arguments`` (argument validation), kept while parallel branches still import it.

"Check" is the conformance suite's word (``checklist.Check``) and the teardown assertion's
(``CallbackServer.check()``); argument validation is ``_arguments``. Import that; this module goes once
no module imports it.
"""

from pytest_voicecb._arguments import STATUS_MAX, STATUS_MIN, optional_seconds, seconds, status, whole

__all__ = ["STATUS_MAX", "STATUS_MIN", "optional_seconds", "seconds", "status", "whole"]
