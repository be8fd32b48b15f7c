/** What REST and WebSocket show of components: one shape, computed in one place. */
import type { Engine } from '../engine/engine.js';
import type { UpdateChecker } from '../releases/checker.js';
import type { ComponentConfig } from '../config/index.js';
import type { ComponentView } from './component-view.js';

export type { ComponentView };

export type RunningProbe = (component: ComponentConfig) => Promise<boolean | null>;

/** What `running` promises, for the API description (the probe is the drivers' `running`, see src/drivers/running-cache.ts). */
export const RUNNING_NOTE =
  '`running` is what the service manager said at most 2 s ago: each component\'s status command runs at most once per 2 s, ' +
  'shared by concurrent requests (and by `system_info`), so a service stopped by something else shows as stopped within 2 s ' +
  '(plus the status command\'s own time). What the updater does to a service shows at once: its own start and stop of the ' +
  'service, and the end of a run, make the next request ask again.';

export async function componentViews(components: ComponentConfig[], checker: UpdateChecker, engine: Engine, running?: RunningProbe): Promise<ComponentView[]> {
  const active = engine.activeRun();
  return Promise.all(
    components.map(async (c) => {
      const s = checker.statusOf(c);
      let isRunning: boolean | null = null;
      try {
        isRunning = running ? await running(c) : null;
      } catch {
        isRunning = null;
      }
      return {
        name: c.name,
        kind: c.kind,
        current_version: s.current_version,
        latest_version: s.latest_version,
        update_available: s.update_available,
        last_checked: s.last_checked,
        release_notes: s.release_notes,
        release_url: s.release_url,
        running: isRunning,
        active_run: active && active.component === c.name ? active.id : null,
        reason: s.reason,
        stale: s.stale,
      };
    }),
  );
}
