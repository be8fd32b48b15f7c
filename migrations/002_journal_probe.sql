-- One row, rewritten to learn whether the journal can be written again after a write failed
-- for want of storage (a full disk): see Journal.probe() and docs/reliability.md.
CREATE TABLE journal_probe (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  at TEXT NOT NULL
);
