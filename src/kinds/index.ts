/**
 * The registry of component kinds: one line per kind. The configuration's `components[]` union,
 * the API's kind enum, the installed-version readers and the drivers are all built from a list of
 * kinds, this one unless a caller (a test) passes its own, e.g. `[...KINDS, dircopyKind]`.
 */
import type { Component } from '../core/component.js';
import type { Installed } from '../core/installed.js';
import { appKind } from './app/index.js';
import { containerKind } from './container/index.js';
import { selfKind } from './self/index.js';
import type { ComponentKind, ComponentOf } from './kind.js';

export const KINDS = [containerKind, appKind, selfKind] as const;

/** A list of kinds, as every function built from the registry takes it. */
export type Kinds = readonly ComponentKind[];

/** A component of one of the built-in kinds, as the drivers get it. */
export type ComponentConfig = ComponentOf<(typeof KINDS)[number]>;

/** The names a user may write as `kind:`, in registry order. */
export function kindNames(kinds: Kinds = KINDS): string[] {
  return kinds.map((k) => k.kind);
}

/** The kind of a component; an unknown one is an error naming the known kinds (never a guess). */
export function kindOf(component: Pick<Component, 'name' | 'kind'>, kinds: Kinds = KINDS): ComponentKind {
  const kind = kinds.find((k) => k.kind === component.kind);
  if (!kind) throw new Error(`component "${component.name}" is of kind "${component.kind}", which this updater does not know (known kinds: ${kindNames(kinds).join(', ')})`);
  return kind;
}

/** What a component has installed now, asked of its kind. */
export function readInstalled(component: Component, kinds: Kinds = KINDS): Installed {
  return kindOf(component, kinds).readInstalled(component);
}

/** `readInstalled` bound to a list of kinds (for the checker). */
export function installedReader(kinds: Kinds = KINDS): (component: Component) => Installed {
  return (component) => readInstalled(component, kinds);
}
