import type { ConfigInput } from './schema.js';

/**
 * The configuration used when there is no `--config`, no `./updater.yaml` and no `--ini`:
 * every default, and (for now) no components. A later issue adds the demo component.
 * It goes through the same validation, environment overrides and path resolution as a file,
 * with relative paths taken from the working directory.
 */
export const DEMO_CONFIG: ConfigInput = {
  components: [],
};
