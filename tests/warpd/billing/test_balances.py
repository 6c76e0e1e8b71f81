"""The in-memory balances: holds, settles, posts, and reloads that raced a charge."""

from __future__ import annotations

from warpd.billing.balances import Balances


def _loaded(balance: int = 1_000, credit: int = 0) -> Balances:
    balances = Balances()
    balances.load([(1, balance, credit)])
    return balances


def test_a_hold_is_refused_past_balance_plus_credit() -> None:
    balances = _loaded(1_000, 200)
    assert balances.hold(1, 1_100)
    assert not balances.hold(1, 101)
    assert balances.available(1) == 100
    balances.release(1, 1_100)
    assert balances.available(1) == 1_200


def test_an_owed_charge_is_held_until_posted_once() -> None:
    balances = _loaded()
    assert balances.owe(1, 300)  # owed whatever the balance: the call has happened
    assert (balances.balance(1), balances.available(1)) == (1_000, 700)
    balances.posted(1, 300, 300)
    assert (balances.balance(1), balances.available(1)) == (700, 700)


def test_a_charge_the_ledger_already_had_only_releases_the_hold() -> None:
    balances = _loaded()
    assert balances.owe(1, 300)
    balances.posted(1, 300, 0)
    assert (balances.balance(1), balances.available(1)) == (1_000, 1_000)


def test_nothing_is_owed_to_an_account_not_loaded() -> None:
    balances = _loaded()
    assert not balances.owe(2, 300)
    assert balances.balance(2) is None
    assert balances.available(1) == 1_000


def test_a_reload_read_before_a_charge_posted_does_not_bring_it_back() -> None:
    balances = _loaded()
    mark = balances.mark()
    balances.owe(1, 300)
    balances.posted(1, 300, 300)  # committed after the reload read the accounts
    balances.load([(1, 1_000, 0)], mark)  # what the reload read: without the charge
    assert balances.available(1) == 700
    # The next reload reads the charge and has nothing since its own mark to take off.
    balances.load([(1, 700, 0)], balances.mark())
    assert balances.available(1) == 700


def test_a_reload_that_read_the_charge_counts_it_twice_until_the_next() -> None:
    balances = _loaded()
    mark = balances.mark()
    balances.owe(1, 300)
    balances.posted(1, 300, 300)
    balances.load([(1, 700, 0)], mark)  # it committed before the read after all
    assert balances.available(1) == 400  # refusing early, never spending what is not there
    balances.load([(1, 700, 0)], balances.mark())
    assert balances.available(1) == 700


def test_an_sms_commit_that_raced_a_call_charge_keeps_it() -> None:
    balances = _loaded()
    assert balances.hold(1, 50)  # a message accepted, its commit about to run
    mark = balances.mark([1])
    balances.owe(1, 300)
    balances.posted(1, 300, 300)  # the call's charge commits while the SMS commit runs
    balances.settle(1, 50, 950, mark)  # the SMS commit read its balance before the call's
    assert (balances.balance(1), balances.available(1)) == (650, 650)


def test_a_settle_with_nothing_in_between_takes_the_database_figure() -> None:
    balances = _loaded()
    assert balances.hold(1, 50)
    assert balances.hold(1, 30)
    balances.settle(1, 80, 920, balances.mark([1]))
    assert (balances.balance(1), balances.available(1)) == (920, 920)
    # A top-up the database has is taken as it comes.
    balances.load([(1, 5_920, 0)], balances.mark())
    assert balances.available(1) == 5_920
