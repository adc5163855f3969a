"""pytest loads the plugin in every run of every project that installs it: importing it must stay cheap."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Each takes 30 ms to 1.8 s to import and none is loaded by pytest itself: the integrations (locust,
# hypothesis, faker), the frameworks users test, and what the benchmarks compare against.
HEAVY = (
    "werkzeug",
    "pydantic",
    "pydantic_core",
    "faker",
    "phonenumbers",
    "hypothesis",
    "locust",
    "gevent",
    "flask",
    "django",
    "fastapi",
    "starlette",
    "requests",
    "schemathesis",
    "polyfactory",
    "factory",  # factory_boy
    "tencentcloud",
)


def fresh_python(code: str, *flags: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *flags, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60, env=env)


@pytest.mark.parametrize("module", ["pytest_voicecb.plugin", "pytest_voicecb"])
def test_importing_the_plugin_loads_nothing_heavy(module: str) -> None:
    code = f"""
import json, sys
import {module}
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
"""
    loaded = set(json.loads(fresh_python(code).stdout))
    assert "pytest_voicecb" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_the_lazy_names_still_work_after_a_light_import() -> None:
    code = """
import sys
import pytest_voicecb
assert "pydantic" not in sys.modules
print(pytest_voicecb.PayloadFactory(1).prompt()["voiceprompt_callback"]["nationcode"])
print("pydantic" in sys.modules)
"""
    assert fresh_python(code).stdout.split() == ["86", "True"]


def test_the_plugins_own_import_time_is_small(tmp_path: Path) -> None:
    """``-X importtime`` after pytest itself is imported: what importing the plugin adds on its own.

    Measured as an installed package runs, from bytecode (this environment may forbid writing .pyc
    files next to the sources, so they go to a private cache), best of three against machine noise.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path)
    code = "import pytest; import pytest_voicecb.plugin"
    fresh_python(code, env=env)  # writes the bytecode
    timings = []
    for _ in range(3):
        stderr = fresh_python(code, "-X", "importtime", env=env).stderr
        cumulative = {
            name.strip(): int(total) for total, name in re.findall(r"import time:\s+\d+ \|\s+(\d+) \|(.*)", stderr)
        }
        timings.append(cumulative["pytest_voicecb.plugin"] + cumulative.get("pytest_voicecb", 0))
    assert min(timings) < 5_000, f"importing the plugin took {timings} µs"
