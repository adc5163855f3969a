"""The commands over HTTPS: ``voicecb serve --tls`` prints its CA; ``check``, ``send`` and ``replay`` trust it
with ``--cacert`` (or skip verification with a warned ``--insecure``); a wrong CA is one line with its fix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.test_cli import Served, assert_one_line_error, voicecb


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str, Path]]:
    log = tmp_path_factory.mktemp("tls") / "callbacks.jsonl"
    server = Served("--tls", "--log", str(log))
    try:
        ca = server.wait_for_line("test CA").rsplit(" ", 1)[1]
        yield server, ca, log
    finally:
        server.close()


def test_serve_tls_prints_an_https_url_and_the_ca_file(served: tuple[Served, str, Path]) -> None:
    server, ca, _ = served
    assert server.url.startswith("https://127.0.0.1:")
    assert "SSL_CERT_FILE / NODE_EXTRA_CA_CERTS / --cacert" in server.wait_for_line("test CA")
    assert Path(ca).read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_send_and_check_trust_the_printed_ca(served: tuple[Served, str, Path]) -> None:
    server, ca, _ = served
    sent = voicecb("send", server.url, "--cacert", ca)
    assert sent.returncode == 0, sent.stderr
    assert "verdict: ok" in sent.stdout
    checked = voicecb("check", server.url, "--cacert", ca, "--skip", "robust/*")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "PASSED" in checked.stdout


def test_without_the_ca_send_check_and_replay_say_which_host_and_the_option(
    served: tuple[Served, str, Path], tmp_path: Path
) -> None:
    server, _, log = served
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    host = f"127.0.0.1:{server.port}"
    words = [f"the TLS certificate of {host} is not trusted", "--cacert FILE"]
    assert_one_line_error(voicecb("send", server.url), *words)
    assert_one_line_error(voicecb("send", server.url, "--cacert", str(other)), *words)
    assert_one_line_error(voicecb("check", server.url), *words)
    server.wait_for_line("valid")  # the log has a record to replay
    copy = tmp_path / "copy.jsonl"  # (replaying the file the server appends to would never end)
    copy.write_bytes(log.read_bytes())
    assert_one_line_error(voicecb("replay", str(copy), server.url), *words)


def test_replay_trusts_the_ca_too(served: tuple[Served, str, Path], tmp_path: Path) -> None:
    server, ca, log = served
    voicecb("send", server.url, "--cacert", ca)
    server.wait_for_line("valid")
    copy = tmp_path / "copy.jsonl"  # (replaying the file the server appends to would never end)
    copy.write_bytes(log.read_bytes())
    replayed = voicecb("replay", str(copy), server.url, "--cacert", ca, "--only-valid")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert " 0 failed" in replayed.stdout


def test_insecure_works_and_is_warned_about(served: tuple[Served, str, Path]) -> None:
    server, _, _ = served
    sent = voicecb("send", server.url, "--insecure")
    assert sent.returncode == 0, sent.stderr
    assert sent.stderr.startswith("voicecb send: warning: --insecure: the server's TLS certificate is not verified")


def test_a_missing_cacert_file_is_a_usage_error(served: tuple[Served, str, Path], tmp_path: Path) -> None:
    server, _, _ = served
    missing = str(tmp_path / "nope.pem")
    assert_one_line_error(voicecb("send", server.url, "--cacert", missing), missing, "no such file")


def test_plain_http_to_the_tls_server_is_told_to_use_https(served: tuple[Served, str, Path]) -> None:
    server, _, _ = served
    sent = voicecb("send", server.url.replace("https://", "http://"))
    assert sent.returncode == 1
    assert "speaks HTTPS: use an https:// URL" in sent.stdout


def test_the_live_console_works_over_https_and_still_refuses_other_sites() -> None:
    import requests

    server = Served("--tls", "--console")
    try:
        ca = server.wait_for_line("test CA").rsplit(" ", 1)[1]
        console = server.wait_for_line("live console: ").split(": ", 1)[1]
        assert console.startswith(f"https://127.0.0.1:{server.port}/_voicecb/?token=")
        token = console.split("token=", 1)[1]
        api = f"https://127.0.0.1:{server.port}/_voicecb/api/callbacks"
        ours = {"X-Voicecb-Token": token, "Origin": f"https://127.0.0.1:{server.port}"}
        assert requests.get(api, headers=ours, verify=ca, timeout=10).status_code == 200
        theirs = {**ours, "Origin": "https://evil.example"}
        refused = requests.get(api, headers=theirs, verify=ca, timeout=10)
        assert refused.status_code == 403
        assert "another site" in refused.json()["error"]
    finally:
        server.close()
