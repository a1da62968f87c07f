-- 0003: full-text search over offering title, summary and tags (FTS5).
-- The FTS row id is the offering's rowid; the application rewrites an
-- offering's row in the same transaction as every change to it.

CREATE VIRTUAL TABLE offerings_fts USING fts5 (
    title,
    summary,
    tags,
    tokenize = 'unicode61 remove_diacritics 2'
);

INSERT INTO offerings_fts (rowid, title, summary, tags)
SELECT o.rowid,
       o.title,
       coalesce(o.summary, ''),
       coalesce((SELECT group_concat(t.tag, ' ') FROM offering_tags t WHERE t.offering_id = o.id), '')
FROM offerings o;
