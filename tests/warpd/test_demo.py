"""The demo's generated SMPP password."""

from __future__ import annotations

import json
import re
from pathlib import Path

from warpd import demo


def test_a_new_demo_password_is_eight_letters_and_digits(tmp_path: Path) -> None:
    # A "-" first read as an option on the README's sim-esme command line, and so
    # failed one bench run in 64; "_" or "-" anywhere is one more thing to quote.
    passwords = {demo._password(tmp_path / "none.json") for _ in range(2000)}
    assert len(passwords) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9]{8}", p) for p in passwords)


def test_the_demo_password_is_kept_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "demo-credentials.json"
    path.write_text(json.dumps({"smpp": {"password": "Kept1234"}}))
    assert demo._password(path) == "Kept1234"
