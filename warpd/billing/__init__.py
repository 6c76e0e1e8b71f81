"""Billing: what a message costs the customer (rates) and us (carrier costs).

Pure lookups over frozen tables loaded from PostgreSQL (:mod:`warpd.billing.tariff`),
built on the longest-prefix structures in :mod:`warpd.billing.prefixes`. The
router imports from here, never the other way round.
"""
