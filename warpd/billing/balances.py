"""Account balances held in memory, so accepting a message makes no round trip.

PostgreSQL stays the authority: the ledger trigger refuses a batch of SMS
charges that would take an account past its credit limit, and every commit
reads back the balances it changed. Between commits this instance holds
what its own uncommitted messages will cost, so it never promises more than
the last known balance allows; other instances' charges arrive with the next
commit or reload, and the database refuses what slips through.

Voice shares the same object: a finished call's charge is owed (held) from
the moment the call ends until its ledger row commits, so neither an SMS nor
the next call spends it meanwhile, and a call is admitted against what SMS
has just spent rather than against a snapshot of the last reload.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from warpd.store.migrate import Conn


@dataclass(slots=True)
class _Account:
    balance: int
    credit_limit: int
    held: int = 0
    #: Every charge applied here since the account was loaded first (only grows).
    charged: int = 0


#: What each account had been charged here when a reload began to read the balances.
Mark = dict[int, int]


class Balances:
    def __init__(self) -> None:
        self._accounts: dict[int, _Account] = {}

    def mark(self, account_ids: Iterable[int] | None = None) -> Mark:
        """Taken before reading the balances that ``load()`` or ``settle()`` get (of
        ``account_ids``, or of every account)."""
        accounts = self._accounts
        if account_ids is None:
            return {account_id: entry.charged for account_id, entry in accounts.items()}
        return {a: accounts[a].charged for a in account_ids if a in accounts}

    def _since(self, entry: _Account, account_id: int, mark: Mark) -> int:
        return entry.charged - mark.get(account_id, entry.charged)

    def load(self, rows: Iterable[tuple[int, int, int]], mark: Mark | None = None) -> None:
        """(account_id, balance, credit_limit_micros) as the database has them now, where
        balance is ``balance_micros - reserved_micros``: what is reserved for messages
        charged on delivery is not there to spend.

        Charges applied here since ``mark`` are taken off again: the rows may have been
        read before those charges committed, and a figure that misses one must not
        replace one that has it (if the rows did have it, it counts twice until the next
        commit or reload: refusing too early, never spending what is not there)."""
        mark = mark or {}
        for account_id, balance, credit_limit in rows:
            entry = self._accounts.get(account_id)
            if entry is None:
                self._accounts[account_id] = _Account(balance, credit_limit)
            else:
                entry.balance = balance - self._since(entry, account_id, mark)
                entry.credit_limit = credit_limit

    def available(self, account_id: int) -> int:
        entry = self._accounts.get(account_id)
        if entry is None:
            return 0
        return entry.balance + entry.credit_limit - entry.held

    def hold(self, account_id: int, amount: int) -> bool:
        """Set ``amount`` aside for an uncommitted charge; False when it does not fit."""
        entry = self._accounts.get(account_id)
        if entry is None or entry.balance + entry.credit_limit - entry.held < amount:
            return False
        entry.held += amount
        return True

    def owe(self, account_id: int, amount: int) -> bool:
        """Set aside a charge that will be posted whatever the balance (a call that ended);
        False for an account not loaded, which has nothing to hold it against."""
        entry = self._accounts.get(account_id)
        if entry is None:
            return False
        entry.held += amount
        return True

    def posted(self, account_id: int, owed: int, charged: int) -> None:
        """An owed charge's ledger row committed; ``charged`` is what it took (0 when the
        ledger already had it). Applied as a difference, not as a balance read back: an
        older figure must never overwrite what a racing SMS commit read. If that commit
        already saw this charge, it counts twice until the next commit or reload, which
        errs on the side of refusing, never of spending money that is not there."""
        entry = self._accounts.get(account_id)
        if entry is not None:
            entry.held -= owed
            entry.balance -= charged
            entry.charged += charged

    def release(self, account_id: int, amount: int) -> None:
        """An uncommitted charge that will not happen."""
        entry = self._accounts.get(account_id)
        if entry is not None:
            entry.held -= amount

    def settle(self, account_id: int, amount: int, balance: int, mark: Mark) -> None:
        """A held charge committed; ``balance`` is what the database read after it, and
        ``mark`` was taken before the commit began (see ``load()``)."""
        entry = self._accounts.get(account_id)
        if entry is not None:
            entry.held -= amount
            entry.balance = balance - self._since(entry, account_id, mark)
            entry.charged += amount

    def balance(self, account_id: int) -> int | None:
        entry = self._accounts.get(account_id)
        return None if entry is None else entry.balance


async def load_balances(conn: Conn) -> list[tuple[int, int, int]]:
    """What ``Balances.load()`` takes, as the database has it now."""
    rows = await conn.fetch(
        "SELECT id, balance_micros - reserved_micros, credit_limit_micros FROM accounts"
    )
    return [(r[0], r[1], r[2]) for r in rows]
