"""Real callback handlers for tests and benchmarks: a correct one and deliberately broken ones.

``logic.Handler(*bugs)`` is the framework-free core (body bytes in, status / content type / body out);
``flask_app``, ``django_app`` and ``fastapi_app`` wrap it in each framework the way an integrator would,
and ``serve.serving(app)`` puts any of them on a loopback port. ``logic.BUGS`` names every bug.
"""
