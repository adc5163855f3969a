"""Every snippet in README.md runs, as a newcomer would run it.

Convention in the README: a ```python block whose first line is ``# name.py`` is a file of a small
project (one project per section: conftest.py and test files are written together and pytest runs them);
any other ```python block is a script, run on its own. In ```console blocks, ``$ pytest ...`` lines run
in the section's project, and ``$ voicecb ...`` lines run against the Flask example served on loopback
(``http://127.0.0.1:8000`` in the README stands for it; ``serve`` is started, checked and stopped).
``myproject.app``, "your application" in the README, is the Flask example.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.handlers.serve import serving

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLES = ROOT / "examples"
README_URL = "http://127.0.0.1:8000"


@dataclass
class Section:
    title: str
    files: dict[str, str] = field(default_factory=dict)
    scripts: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


def sections() -> list[Section]:
    """README's sections (by ## / ### heading) with their snippets."""
    found: list[Section] = [Section("(top)")]
    for match in re.finditer(r"^(#{2,3}) ([^\n]+)$|^```(\w+)\n(.*?)^```$", README.read_text(), re.M | re.S):
        heading, lang, code = match.group(2), match.group(3), match.group(4)
        if heading:
            found.append(Section(heading))
        elif lang == "python":
            first = code.splitlines()[0]
            name = re.fullmatch(r"# ([\w/]+\.py)", first)
            if name:
                found[-1].files[name.group(1)] = code
            else:
                found[-1].scripts.append(code)
        elif lang == "console":
            found[-1].commands += [line[2:] for line in code.splitlines() if line.startswith("$ ")]
    return [section for section in found if section.files or section.scripts or section.commands]


SECTIONS = sections()


def test_the_readme_has_snippets_in_every_quickstart() -> None:
    titles = {section.title for section in SECTIONS}
    assert {
        "Quickstart: test my handler",
        "Quickstart: test my sender",
        "Quickstart: check a running service",
        "Without pytest",
    } <= titles


def test_the_two_setup_commands_are_the_ones_ci_runs() -> None:
    readme = [line.strip() for line in README.read_text().splitlines() if line.strip().startswith("python")]
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.startswith("python -m pip install -e")
    ]
    assert (
        readme[:2]
        == ci
        == [
            'python -m pip install -e ".[examples]" && python -m pytest examples',
            'python -m pip install -e ".[test]" && python -m pytest',
        ]
    )


def _projects() -> list[Section]:
    return [section for section in SECTIONS if section.files]


@pytest.mark.parametrize("section", _projects(), ids=lambda s: s.title)
def test_project_snippets_pass(section: Section, pytester: pytest.Pytester) -> None:
    # "myproject.app" in the README is the integrator's app: the Flask example stands in for it.
    pytester.makepyfile(voice_callbacks=(EXAMPLES / "voice_callbacks.py").read_text())
    (pytester.path / "myproject").mkdir()
    (pytester.path / "myproject" / "__init__.py").write_text("")
    app = (EXAMPLES / "flask_handler" / "app.py").read_text()
    (pytester.path / "myproject" / "app.py").write_text(app)
    for name, code in section.files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
    tests = sum(code.count("\ndef test_") for code in section.files.values())
    result = pytester.runpytest("-p", "no:randomly", "-W", "error")
    result.assert_outcomes(passed=tests)
    for command in section.commands:
        argv = shlex.split(command)
        assert argv[0] == "pytest", f"a console line in a project section runs pytest: {command}"
        result = pytester.runpytest("-p", "no:randomly", "-W", "error", *argv[1:])
        assert result.ret == 0, command
        assert result.parseoutcomes()["passed"] > tests


@pytest.mark.parametrize(
    "script", [code for section in SECTIONS for code in section.scripts], ids=lambda code: code.splitlines()[0][:40]
)
def test_script_snippets_run(script: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def example_base() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(EXAMPLES))
        from flask_handler.app import create_app
    with serving(create_app()) as base:
        yield base


def _voicecb_commands() -> list[str]:
    return [command for section in SECTIONS for command in section.commands if command.startswith("voicecb ")]


@pytest.mark.parametrize("command", _voicecb_commands())
def test_voicecb_commands_run(command: str, example_base: str, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "pytest_voicecb", *shlex.split(command.replace(README_URL, example_base))[1:]]
    if argv[3] == "serve":
        port = argv.index("--port") + 1 if "--port" in argv else None
        if port is not None:
            argv[port] = "0"
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith("listening on http://127.0.0.1:")
            proc.send_signal(signal.SIGINT)
            _out, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, err
        return
    done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_where_things_are_names_every_module_and_folder_of_the_package() -> None:
    """The README's tree stays true: each module and subpackage at the package's root has its line."""
    text = README.read_text(encoding="utf-8")
    tree = text.split("## Where things are", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    named = set(re.findall(r"[\w.]+\.py|\w+/", tree))
    package = README.parent / "pytest_voicecb"
    present = {p.name for p in package.glob("*.py")} | {
        f"{p.name}/" for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    assert present - named == set(), "add a line to README.md's 'Where things are'"
    assert {name for name in named if name.endswith(".py")} <= present, "a module the README names is gone"
