"""``python -m warpd.sim smsc|esme`` as processes, and ``register`` into a parent parser."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from warpd.sim.__main__ import main
from warpd.sim.cli import esme_command, register, smsc_command

SIM = [sys.executable, "-m", "warpd.sim"]


def test_register_adds_both_commands_with_handlers() -> None:
    parser = argparse.ArgumentParser(prog="warpd")
    register(parser.add_subparsers(dest="command", required=True))
    smsc = parser.parse_args(["sim-smsc", "--outcomes", "DELIVRD=0.9,UNDELIV=0.1"])
    assert smsc.handler is smsc_command
    assert smsc.outcomes == {"DELIVRD": 0.9, "UNDELIV": 0.1}
    assert smsc.listen == ("127.0.0.1", 2776)
    esme = parser.parse_args(["sim-esme", "--count", "5", "--receipts", "--rate", "100"])
    assert esme.handler is esme_command
    assert (esme.count, esme.receipts, esme.rate) == (5, True, 100.0)


class Smsc:
    def __init__(self, process: subprocess.Popen[str], port: int, control: int) -> None:
        self.process, self.port, self.control = process, port, control

    def post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.control}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            answer: dict[str, object] = json.load(response)
        return answer


@pytest.fixture
def smsc_process(tmp_path: Path) -> Iterator[Smsc]:
    process = subprocess.Popen(
        [*SIM, "smsc", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
         "--response-delay", "0.001", "--log", str(tmp_path / "smsc.jsonl")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()  # "sim-smsc listening HOST:PORT control HOST:PORT"
    words = line.split()
    assert words[:2] == ["sim-smsc", "listening"], line
    smsc = Smsc(process, int(words[2].rsplit(":", 1)[1]), int(words[4].rsplit(":", 1)[1]))
    yield smsc
    if process.poll() is None:
        process.kill()
        process.wait(5)


def _esme(port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SIM, "esme", "--port", str(port), "--system-id", "sim", "--password", "sim", *extra],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_esme_against_smsc_processes_exit_codes_and_stats(
    smsc_process: Smsc, tmp_path: Path
) -> None:
    ok = _esme(smsc_process.port, "--count", "200", "--binds", "2", "--receipts", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    summary = json.loads(ok.stdout)
    assert summary["ok"] is True
    assert summary["receipt_ids_matched"] == 200
    readable = _esme(smsc_process.port, "--count", "10", "--receipts")
    assert readable.returncode == 0
    assert "result     ok" in readable.stdout
    assert smsc_process.post("/mode", {"mode": "reject"})["mode"] == "reject"
    rejected = _esme(smsc_process.port, "--count", "10", "--json")
    assert rejected.returncode == 1
    assert json.loads(rejected.stdout)["responses_by_status"] == {"ESME_RINVDSTADR": 10}
    smsc_process.process.send_signal(signal.SIGTERM)
    out, _ = smsc_process.process.communicate(timeout=10)
    assert smsc_process.process.returncode == 0
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["submits_by_status"] == {"ESME_ROK": 210, "ESME_RINVDSTADR": 10}
    assert stats["receipts_acked"] == 210
    lines = [json.loads(line) for line in (tmp_path / "smsc.jsonl").read_text().splitlines()]
    assert sum(line["kind"] == "submit" for line in lines) == 220
    assert sum(line["kind"] == "receipt" for line in lines) == 210


def test_esme_that_cannot_connect_fails_with_a_reason() -> None:
    # A process: the command configures logging for the whole interpreter.
    result = _esme(1, "--count", "1")  # nothing listens on port 1
    assert result.returncode == 1
    assert "cannot connect to 127.0.0.1:1" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["smsc", "--outcomes", "DELIVRD"],
        ["smsc", "--outcomes", "NOPE=1"],
        ["smsc", "--listen", "nowhere"],
        ["smsc", "--tls-cert", "/tmp/cert.pem"],
        ["esme", "--bind", "receiver"],
        ["esme", "--window", "0"],
        ["esme", "--destination", "2-1"],
    ],
)
def test_bad_arguments_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(args)
    except SystemExit as exc:  # argparse refuses it
        code = int(exc.code or 0)
    assert code == 2
    assert capsys.readouterr().err
