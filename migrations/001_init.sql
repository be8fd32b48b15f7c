-- Runs: one row per update run; `state` is the machine state, committed before that
-- state's work begins. `snapshot` is what recovery needs: {machineVersion, state, context}.
CREATE TABLE runs (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  component         TEXT    NOT NULL,
  kind              TEXT    NOT NULL,
  mode              TEXT    NOT NULL DEFAULT 'update' CHECK (mode IN ('update', 'restore')),
  requested_version TEXT,
  from_version      TEXT,
  to_version        TEXT,
  dry_run           INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1)),
  state             TEXT    NOT NULL,
  result            TEXT,             -- the terminal state once the run ended, else NULL
  message           TEXT,             -- the latest human sentence
  error_code        TEXT,
  error             TEXT,
  recoveries        INTEGER NOT NULL DEFAULT 0,
  machine_version   INTEGER NOT NULL,
  snapshot          TEXT    NOT NULL,
  created_at        TEXT    NOT NULL,
  updated_at        TEXT    NOT NULL,
  finished_at       TEXT
);
CREATE INDEX runs_by_component ON runs (component, id DESC);
CREATE INDEX runs_unfinished ON runs (id) WHERE result IS NULL;

-- Transitions: the story of every run. `seq` is global and gap-free (AUTOINCREMENT never
-- reuses a value and a rolled-back insert does not consume one), so clients replay by seq.
CREATE TABLE transitions (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id     INTEGER NOT NULL REFERENCES runs (id),
  from_state TEXT,
  to_state   TEXT    NOT NULL,
  event      TEXT    NOT NULL,
  message    TEXT    NOT NULL,
  level      TEXT    NOT NULL CHECK (level IN ('info', 'warn', 'error')),
  at         TEXT    NOT NULL
);
CREATE INDEX transitions_by_run ON transitions (run_id, seq);

-- Steps: an intent row written before each sub-step of a phase's work, so recovery and
-- rollback know what may have taken effect.
CREATE TABLE run_steps (
  run_id INTEGER NOT NULL REFERENCES runs (id),
  n      INTEGER NOT NULL,
  phase  TEXT    NOT NULL,
  step   TEXT    NOT NULL,
  detail TEXT,
  at     TEXT    NOT NULL,
  PRIMARY KEY (run_id, n)
);

-- Components: the last check's findings, per configured component.
CREATE TABLE components (
  name             TEXT PRIMARY KEY,
  kind             TEXT NOT NULL,
  current_version  TEXT,
  latest_version   TEXT,
  update_available INTEGER NOT NULL DEFAULT 0,
  reason           TEXT,
  release_notes    TEXT,
  release_url      TEXT,
  release_json     TEXT,
  stale            INTEGER NOT NULL DEFAULT 0,
  last_checked     TEXT,
  last_error       TEXT
);

-- HTTP cache for conditional requests (ETag / If-None-Match).
CREATE TABLE http_cache (
  url        TEXT PRIMARY KEY,
  etag       TEXT,
  status     INTEGER NOT NULL,
  body       TEXT NOT NULL,
  fetched_at TEXT NOT NULL
);
