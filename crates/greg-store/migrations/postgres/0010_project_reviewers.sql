-- greg-store schema 10, PostgreSQL flavour: the required reviewers of a repository edited by its
-- admins on the /project page (SPEC §9). They are required on every pull request, besides
-- `repos[].reviewers` of config.yaml. Keep in step with ../sqlite/0010_project_reviewers.sql.
CREATE TABLE project_reviewers (
    repo       TEXT    NOT NULL,
    login_key  TEXT    NOT NULL,
    login      TEXT    NOT NULL,
    added_by   TEXT    NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (repo, login_key)
);
