"""What `route explain` prints, from a hand-built table."""

from __future__ import annotations

from warpd.routing.explain import explain_mt

from .builders import connectors, mt, table

GB = "447400123456"


def test_explain_names_the_rule_the_candidates_and_the_skips() -> None:
    t = table(
        [
            mt(1, 10, priority=10, source="^BANK$"),
            mt(2, 20, priority=20, account=9),
            mt(3, 30, 31, 32, priority=30, prefix="44"),
        ],
        connectors(10, 20, 30, 31, 32, disabled=[31]),
        prefixes={"4474": "23415"},
    )
    text = explain_mt(t, account_id=1, destination=GB, source="ACME", account_name="acme")
    assert text.splitlines() == [
        "MT from account 1 (acme), sender 'ACME', to 447400123456",
        "  region GB, network 23415 by prefix 4474",
        "  1 rule(s) for other accounts match the prefix: not considered",
        "rules tried, in order (priority, longest prefix):",
        "  route 1 (priority 10, prefix '', any account): skipped,"
        " sender 'ACME' does not match '^BANK$'",
        "  route 3 (priority 30, prefix '44', any account): chosen",
        "  connector 31 (c31): left out, disabled",
        "route 3, failover: candidates in order 30 (c30), 32 (c32)",
    ]


def test_explain_no_route() -> None:
    t = table([mt(1, 10, prefix="33")])
    text = explain_mt(t, account_id=1, destination=GB, source="")
    assert "network unknown (no number prefix matches)" in text
    assert "none matches the prefix" in text
    assert text.endswith("NO ROUTE\n")
    t = table([mt(1, 10, mcc_mnc="20801")])
    text = explain_mt(t, account_id=1, destination=GB, source="")
    assert "network unknown is not 20801" in text
    assert text.endswith("NO ROUTE\n")
