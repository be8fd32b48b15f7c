/** What every configured component has, whatever its kind (each kind adds its own keys). */
export interface Component {
  /** Unique; used in file names, URLs and messages. */
  name: string;
  /** The kind's name (`container`, `app`, ...): which plug-in of src/kinds/ does its work. */
  kind: string;
  /** GitHub `owner/name`: where its releases come from. */
  repo: string;
  /**
   * While it has an update available, no other component may be updated alone, and an update of
   * all components installs it first. The configuration always sets it (default false).
   */
  updateFirst?: boolean;
  /** Checked by verify, when the kind has one. */
  health?: { url: string; timeoutSeconds: number };
}
