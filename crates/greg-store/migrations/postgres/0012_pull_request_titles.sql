-- greg-store schema 12, PostgreSQL flavour: the title and author of each pull request greg has
-- seen (a pull-request webhook, or a read from the provider), for the queue and pull-request
-- pages (SPEC §9). One row per (repository key, number); the last one seen wins. Keep in step
-- with ../sqlite/0012_pull_request_titles.sql. (Schema 11 is reserved.)
CREATE TABLE pull_requests (
    repo       TEXT   NOT NULL,
    number     BIGINT NOT NULL,
    title      TEXT   NOT NULL,
    author     TEXT   NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (repo, number)
);
