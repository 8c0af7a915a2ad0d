-- greg-store schema 8, PostgreSQL flavour: the latest commit of each target branch that has reports
-- (SPEC §8: a report comment compares its test totals with "the target branch's latest
-- report"). Written when a render finds reports on the branch's tip, read when the tip has
-- none yet (its CI still running). Keep in step with ../sqlite/0008_report_baselines.sql.
CREATE TABLE report_baselines (
    repo       TEXT    NOT NULL,
    branch     TEXT    NOT NULL,
    sha        TEXT    NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (repo, branch)
);
