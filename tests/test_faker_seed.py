"""``voicecb_faker_seed = true``: Faker's ``faker`` fixture replays with ``voicecb_payload`` under one
``--voicecb-seed``, without pytest-randomly (run as users run it, with pytester)."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["pytester"]

pytest.importorskip("faker")

TEST = r"""
def test_both(faker, voicecb_payload):
    print("\nNAME", repr(faker.name()), "CALLID", voicecb_payload()["voiceprompt_callback"]["callid"])

def test_other(faker):
    print("\nOTHER", repr(faker.name()))
"""


def names(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = pytester.runpytest("-p", "no:randomly", "-s", "-q", *args)
    result.assert_outcomes(passed=2)
    return re.findall(r"^(?:NAME|OTHER) .*$", result.stdout.str(), re.MULTILINE)


def test_faker_follows_the_voicecb_seed_when_opted_in(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nvoicecb_faker_seed = true\n")
    pytester.makepyfile(TEST)
    first = names(pytester, "--voicecb-seed=11")
    assert len(first) == 2
    assert names(pytester, "--voicecb-seed=11") == first
    other = names(pytester, "--voicecb-seed=12")
    assert other[0].split("CALLID")[0] != first[0].split("CALLID")[0]  # the fake name changed
    assert other[0].split("CALLID")[1] != first[0].split("CALLID")[1]  # and so did the payload
    assert other[1] != first[1]
    assert first[0].split("CALLID")[0].replace("NAME", "") != first[1].replace("OTHER", "")  # per test


def test_off_by_default_faker_keeps_its_own_fixed_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TEST)
    first = names(pytester, "--voicecb-seed=11")
    other = names(pytester, "--voicecb-seed=12")
    assert first[0].split("CALLID")[0] == other[0].split("CALLID")[0]  # Faker's default seed, untouched
    assert first[0].split("CALLID")[1] != other[0].split("CALLID")[1]


def test_a_failing_test_using_the_seeded_faker_prints_the_rerun_line(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nvoicecb_faker_seed = true\n")
    pytester.makepyfile("def test_fails(faker):\n    assert faker.name() == ''\n")
    result = pytester.runpytest("-p", "no:randomly", "--voicecb-seed=5")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*rerun with: pytest test_a_failing*::test_fails --voicecb-seed=5*"])


def test_with_pytest_randomly_the_voicecb_seed_still_governs_faker(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_randomly")
    pytester.makeini("[pytest]\nvoicecb_faker_seed = true\n")
    pytester.makepyfile(TEST)

    def run(*args: str) -> list[str]:
        result = pytester.runpytest("-p", "randomly", "-p", "no:cacheprovider", "-s", "-q", *args)
        result.assert_outcomes(passed=2)
        return sorted(re.findall(r"^(?:NAME|OTHER) .*$", result.stdout.str(), re.MULTILINE))

    first = run("--randomly-seed=1", "--voicecb-seed=11")
    assert run("--randomly-seed=2", "--voicecb-seed=11") == first  # pytest-randomly's faker_seed overridden
    assert run("--randomly-seed=1") == run("--randomly-seed=1")  # no --voicecb-seed: it follows --randomly-seed
