-- greg-store schema 6: candidates of the merge pipeline (SPEC §10). Identical in the SQLite
-- and PostgreSQL flavours. A candidate is one or more merge entries built together on one
-- staging commit; its id is the id of its first entry (the <n> of greg/staging/<target>/<n>).
-- candidate: the candidate the entry is in, NULL while it waits.
-- parent: the candidate that candidate is built on, NULL for the target tip.
-- batch_group: entries of one half of a split (bisected) batch share it and start together.
ALTER TABLE queue_entries ADD COLUMN candidate BIGINT;
ALTER TABLE queue_entries ADD COLUMN parent BIGINT;
ALTER TABLE queue_entries ADD COLUMN batch_group BIGINT;
