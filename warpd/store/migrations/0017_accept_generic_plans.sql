-- accept_messages() is the one statement of every group commit, and under the
-- pool's force_custom_plan (warpd/store/database.py) each call planned its
-- statements and those of the ledger's trigger afresh: measured at 1,000
-- msg/s, 1.1 ms a call, of which about half was planning, for batches of two
-- or three messages. Its statements read no growing table by a join (an
-- INSERT from its array, the ledger rows, and the accounts it touched by
-- primary key), so a plan kept for the connection's life cannot go stale the
-- way the journal's receipt update did: here the default applies. Triggers
-- fired inside inherit the setting.
ALTER FUNCTION accept_messages(accepted_message[], uuid[]) SET plan_cache_mode = auto;
