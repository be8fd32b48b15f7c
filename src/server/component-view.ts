/**
 * The shape of a component in `GET /api/components` and `system_info` (CONTRACT.md). Types only,
 * with no imports: the server (views.ts) and the dashboard's browser code (dashboard/api.ts, which
 * has DOM types and no Node ones) both use this one declaration.
 */
export interface ComponentView {
  name: string;
  kind: string;
  current_version: string | null;
  latest_version: string | null;
  update_available: boolean;
  last_checked: string | null;
  release_notes: string | null;
  release_url: string | null;
  /** Whether the service runs now; null when it cannot be told (no probe for this kind yet). */
  running: boolean | null;
  /** The id of this component's unfinished run, if any. */
  active_run: number | null;
  /** Why no update can be offered, or why the result may be out of date; else null. */
  reason: string | null;
  /** True when the last check could not reach GitHub and these figures are from before it. */
  stale: boolean;
}
