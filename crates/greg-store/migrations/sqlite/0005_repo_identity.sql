-- greg-store schema 5: repository identity is case-insensitive (SPEC §3). Keys written from
-- now on are lower case (`RepoName::key`); this rewrites the rows written before, so that
-- `Acme/Demo` and `acme/demo` name one repository. Identical in the SQLite and PostgreSQL
-- flavours. Rows that would collide with a row already in lower case (one repository
-- recorded under two spellings) are removed first for the keys that must stay unique:
-- the lower-case row wins.
DELETE FROM approvals WHERE repo <> lower(repo) AND EXISTS (
    SELECT 1 FROM approvals a WHERE a.repo = lower(approvals.repo) AND a.pr = approvals.pr
        AND a.login_key = approvals.login_key);
DELETE FROM required_reviewers WHERE repo <> lower(repo) AND EXISTS (
    SELECT 1 FROM required_reviewers r WHERE r.repo = lower(required_reviewers.repo)
        AND r.pr = required_reviewers.pr AND r.login_key = required_reviewers.login_key);
DELETE FROM commit_statuses WHERE repo <> lower(repo) AND EXISTS (
    SELECT 1 FROM commit_statuses c WHERE c.repo = lower(commit_statuses.repo)
        AND c.sha = commit_statuses.sha AND c.context = commit_statuses.context);
DELETE FROM tree_closures WHERE repo <> lower(repo) AND EXISTS (
    SELECT 1 FROM tree_closures t WHERE t.repo = lower(tree_closures.repo)
        AND t.target = tree_closures.target);
UPDATE builds SET state = 'superseded' WHERE repo <> lower(repo)
    AND state IN ('pending', 'queued', 'running') AND EXISTS (
    SELECT 1 FROM builds b WHERE b.repo = lower(builds.repo) AND b.sha = builds.sha
        AND b.context = builds.context AND b.state IN ('pending', 'queued', 'running'));
UPDATE queue_entries SET state = 'cancelled', reason = 'duplicate under another spelling'
    WHERE repo <> lower(repo) AND state IN ('waiting', 'staging', 'building', 'landing')
    AND EXISTS (
    SELECT 1 FROM queue_entries q WHERE q.repo = lower(queue_entries.repo)
        AND q.pr = queue_entries.pr AND q.kind = queue_entries.kind
        AND q.state IN ('waiting', 'staging', 'building', 'landing'));
UPDATE deliveries SET repo_key = lower(repo_key) WHERE repo_key <> lower(repo_key);
UPDATE builds SET repo = lower(repo) WHERE repo <> lower(repo);
UPDATE approvals SET repo = lower(repo) WHERE repo <> lower(repo);
UPDATE required_reviewers SET repo = lower(repo) WHERE repo <> lower(repo);
UPDATE commit_statuses SET repo = lower(repo) WHERE repo <> lower(repo);
UPDATE queue_entries SET repo = lower(repo) WHERE repo <> lower(repo);
UPDATE tree_closures SET repo = lower(repo) WHERE repo <> lower(repo);
UPDATE effects SET repo = lower(repo) WHERE repo <> lower(repo);
