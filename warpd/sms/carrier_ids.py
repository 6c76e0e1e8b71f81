"""Carrier message ids in one canonical form, so receipts find their parts."""

from __future__ import annotations


def carrier_id(raw: str, dlr_id_format: str, *, resp: bool) -> str:
    """One canonical form for a carrier message id, from a submit_sm_resp or a receipt.

    ``hex``: the submit_sm_resp gives the id in hex and the receipt text in
    decimal; ``dec`` the other way round (Kannel's msg-id-type). Both sides
    become the number in decimal; ids that are not numbers stay as they are.
    """
    raw = raw.strip()
    if dlr_id_format == "as_is" or not raw:
        return raw
    base = 16 if (dlr_id_format == "hex") == resp else 10
    try:
        return str(int(raw, base))
    except ValueError:
        return raw
