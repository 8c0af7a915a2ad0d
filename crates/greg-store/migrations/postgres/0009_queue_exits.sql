-- greg-store schema 9: why a queue entry left its queue, structured (issue 13 item 3).
-- Identical in the SQLite and PostgreSQL flavours.
-- exit: JSON of greg_store::QueueExit ({"kind": "build_failed", ...}), written with the change
-- that finished the entry (landed, failed, cancelled); NULL while active, and for entries
-- that finished before schema 9 (their free-text `reason` says why).
ALTER TABLE queue_entries ADD COLUMN exit TEXT;
