"""The SMS router: MT rules, failover, round robin, least cost; MO rules; numbers.

Pure functions over a frozen :class:`~warpd.routing.table.RoutingTable` that
:func:`~warpd.routing.table.load_routing` builds from one database snapshot;
`warpd route explain` prints the reasons behind a decision.
"""
