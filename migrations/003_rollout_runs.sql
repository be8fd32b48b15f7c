-- The run a fleet rollout started on this device, per component: a repeated `perform_update` with
-- the same `rollout` id answers this run instead of starting another (docs/fleet.md). Written in the
-- transaction that creates the run, so a run of a rollout and its key exist together or not at all.
CREATE TABLE rollout_runs (
  rollout   TEXT    NOT NULL,
  component TEXT    NOT NULL,
  run_id    INTEGER NOT NULL REFERENCES runs (id),
  PRIMARY KEY (rollout, component)
) WITHOUT ROWID;
