"""What every peer shares: installing Debian and PyPI packages, and the run directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Protocol

BENCH = Path(__file__).resolve().parent.parent
OUT = BENCH / "out"
#: venvs outlive bench/out (which a clean run may delete): installing Jasmin takes minutes.
CACHE = Path(os.environ.get("WARPD_BENCH_CACHE", Path.home() / ".cache" / "warpd-bench"))


class PeerUnavailable(RuntimeError):
    """The peer cannot be installed or started here; the message says why."""


class Peer(Protocol):
    name: str

    def install(self) -> None: ...
    def start(self) -> None: ...
    def health(self) -> bool: ...
    def stop(self) -> None: ...
    def pids(self) -> list[int]: ...


def rundir(name: str) -> Path:
    path = OUT / "run" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _installed(package: str) -> bool:
    query = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return "install ok installed" in query.stdout


def apt_install(*packages: str) -> None:
    """apt-get install the Debian packages that are missing (as root or with sudo)."""
    missing = [p for p in packages if not _installed(p)]
    if not missing:
        return
    sudo: list[str] = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and shutil.which("sudo") is None:
        raise PeerUnavailable(f"need root or sudo to install {' '.join(missing)}")
    print(f"bench: apt-get install {' '.join(missing)}", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=False, env=env)
    done = subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise PeerUnavailable(f"apt-get install {' '.join(missing)} failed: {done.stderr[-500:]}")
    # A package's own service (redis, rabbitmq) may start on install; the suite
    # uses it if it answers, so nothing is stopped here.


def venv_install(name: str, requirement: str, probe: str) -> Path:
    """A venv of its own for a Python peer whose pins clash with ours; returns its bin/."""
    venv = CACHE / name
    binary = venv / "bin"
    if (binary / probe).exists():
        return binary
    print(f"bench: pip install {requirement} into {venv}", file=sys.stderr, flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    # The peer runs on the interpreter warpd does (3.11), not on the venv's copy of ours.
    python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    subprocess.run([python, "-m", "venv", venv], check=True)
    done = subprocess.run(
        [binary / "pip", "install", "-q", "--disable-pip-version-check", requirement],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not (binary / probe).exists():
        raise PeerUnavailable(f"pip install {requirement} failed: {done.stderr[-800:]}")
    return binary


def venv_ready(name: str, probe: str) -> bool:
    return (CACHE / name / "bin" / probe).exists()
