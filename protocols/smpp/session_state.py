"""SMPP 3.4 bind states (section 2.3) and the PDUs each side may issue in each (table 2-1).

Two tables, both keyed ``(role, state, command_id)`` with anything missing
meaning "not allowed":

* ``INBOUND``: what the session does with a request it *receives*;
  a request absent from it is answered with ESME_RINVBNDSTS (or, for a bind
  while bound, ESME_RALYBND through its own entry).
* ``OUTBOUND``: the requests the session may *send*; sending anything else is
  a programming error in the glue and raises.
"""

from __future__ import annotations

from enum import Enum

from protocols.smpp.constants import CommandId


class Role(Enum):
    """Which end of the connection this session is."""

    __hash__ = object.__hash__  # singletons: identity hash, in C (keys of the tables)

    ESME = "esme"
    SMSC = "smsc"


class BindState(Enum):
    """SMPP 3.4 section 2.3 session states (UNBOUND: unbind sent or received, draining)."""

    __hash__ = object.__hash__  # singletons: identity hash, in C (keys of the tables)

    OPEN = "open"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBOUND = "unbound"
    CLOSED = "closed"


BOUND_STATES = frozenset({BindState.BOUND_TX, BindState.BOUND_RX, BindState.BOUND_TRX})


class Action(Enum):
    """What the session does with an inbound request."""

    __hash__ = object.__hash__  # singletons: identity hash, in C (keys of the tables)

    SURFACE = "surface"  # hand it to the glue as PduReceived; the glue answers
    BIND = "bind"  # hand it to the glue as BindRequested; the glue accepts or refuses
    ENQUIRE_LINK = "enquire_link"  # the session answers it itself
    UNBIND = "unbind"  # drain what the glue owes, answer unbind_resp, close
    ALREADY_BOUND = "already_bound"  # answer ESME_RALYBND


#: The bind state a successful bind_*_resp leads to.
STATE_AFTER_BIND = {
    CommandId.BIND_TRANSMITTER: BindState.BOUND_TX,
    CommandId.BIND_RECEIVER: BindState.BOUND_RX,
    CommandId.BIND_TRANSCEIVER: BindState.BOUND_TRX,
    CommandId.BIND_TRANSMITTER_RESP: BindState.BOUND_TX,
    CommandId.BIND_RECEIVER_RESP: BindState.BOUND_RX,
    CommandId.BIND_TRANSCEIVER_RESP: BindState.BOUND_TRX,
}
BINDS = frozenset({CommandId.BIND_TRANSMITTER, CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER})

_C = CommandId
_S = BindState
# Table 2-1: requests an ESME issues when bound as a transmitter, and those
# an SMSC issues to a receiver.  A transceiver does both.
_ESME_TX = (_C.SUBMIT_SM, _C.SUBMIT_MULTI, _C.DATA_SM, _C.QUERY_SM, _C.CANCEL_SM, _C.REPLACE_SM)
_SMSC_RX = (_C.DELIVER_SM, _C.DATA_SM, _C.ALERT_NOTIFICATION)
_ANY_BOUND = (_S.BOUND_TX, _S.BOUND_RX, _S.BOUND_TRX)


def _inbound() -> dict[tuple[Role, BindState, CommandId], Action]:
    table: dict[tuple[Role, BindState, CommandId], Action] = {}
    for role in Role:
        # enquire_link is answered in every state but CLOSED: SMPP 5.0 allows
        # it in OPEN, and refusing it there only makes peers drop the link.
        for state in (_S.OPEN, _S.UNBOUND, *_ANY_BOUND):
            table[role, state, _C.ENQUIRE_LINK] = Action.ENQUIRE_LINK
        for state in _ANY_BOUND:
            table[role, state, _C.UNBIND] = Action.UNBIND
        # Both ends unbinding at once: answer the peer's unbind too.
        table[role, _S.UNBOUND, _C.UNBIND] = Action.UNBIND
    for bind in BINDS:
        table[Role.SMSC, _S.OPEN, bind] = Action.BIND
        for state in _ANY_BOUND:
            table[Role.SMSC, state, bind] = Action.ALREADY_BOUND
    table[Role.ESME, _S.OPEN, _C.OUTBIND] = Action.SURFACE
    for cid in _ESME_TX:
        table[Role.SMSC, _S.BOUND_TX, cid] = Action.SURFACE
        table[Role.SMSC, _S.BOUND_TRX, cid] = Action.SURFACE
    for cid in _SMSC_RX:
        table[Role.ESME, _S.BOUND_RX, cid] = Action.SURFACE
        table[Role.ESME, _S.BOUND_TRX, cid] = Action.SURFACE
    return table


def _outbound() -> frozenset[tuple[Role, BindState, CommandId]]:
    allowed: set[tuple[Role, BindState, CommandId]] = set()
    for role in Role:
        for state in (_S.OPEN, *_ANY_BOUND):
            allowed.add((role, state, _C.ENQUIRE_LINK))
        for state in _ANY_BOUND:
            allowed.add((role, state, _C.UNBIND))
    for bind in BINDS:
        allowed.add((Role.ESME, _S.OPEN, bind))
    allowed.add((Role.SMSC, _S.OPEN, _C.OUTBIND))
    for cid in _ESME_TX:
        allowed.update({(Role.ESME, _S.BOUND_TX, cid), (Role.ESME, _S.BOUND_TRX, cid)})
    for cid in _SMSC_RX:
        allowed.update({(Role.SMSC, _S.BOUND_RX, cid), (Role.SMSC, _S.BOUND_TRX, cid)})
    return frozenset(allowed)


INBOUND = _inbound()
OUTBOUND = _outbound()
#: Requests that occupy the window: the traffic, not session management.
WINDOWED = frozenset(_ESME_TX + _SMSC_RX) - {_C.ALERT_NOTIFICATION}
