/**
 * A component's driver: the shared release work (resolve the target, check the manifest) plus
 * the kind-specific work (container or app) behind a `KindDriver`.
 */
import type { Logger } from 'pino';
import type { DiscoverOutput, UpdateContext } from '../../machines/update-machine.js';
import type { Component } from '../core/component.js';
import type { Driver, Outcome, StepContext } from '../core/driver.js';
import type { ReleaseDiscovery } from '../releases/discovery.js';
import { releaseOf } from '../releases/facts.js';
import type { KindDriver } from '../kinds/kind.js';

export class ComponentDriver implements Driver {
  constructor(
    readonly component: Component,
    readonly kind: KindDriver,
    private readonly discovery: ReleaseDiscovery,
  ) {}

  discover(run: UpdateContext, ctx: StepContext): Promise<DiscoverOutput> {
    ctx.signal.throwIfAborted();
    return this.discovery.discover(this.component, run.requestedVersion, this.kind.installed());
  }

  async validate(run: UpdateContext, ctx: StepContext): Promise<void> {
    const manifest = await this.discovery.manifest(this.component, releaseOf(run).tag);
    if (manifest.unknownKeys.length) ctx.log.warn({ keys: manifest.unknownKeys }, 'the release manifest names checks this updater does not know; ignoring them');
    await this.kind.validate(run, ctx, manifest);
  }

  backup(run: UpdateContext, ctx: StepContext) {
    return this.kind.backup(run, ctx);
  }
  apply(run: UpdateContext, ctx: StepContext) {
    return this.kind.apply(run, ctx);
  }
  verify(run: UpdateContext, ctx: StepContext) {
    return this.kind.verify(run, ctx);
  }
  rollback(run: UpdateContext, ctx: StepContext) {
    return this.kind.rollback(run, ctx);
  }
  async finalize(run: UpdateContext, outcome: Outcome, log: Logger) {
    await this.kind.finalize?.(run, outcome, log);
  }
  async sweep(settled: (runId: number) => boolean, log: Logger) {
    await this.kind.sweep?.(settled, log);
  }
  async planRestore(_component: string, log: Logger) {
    return this.kind.planRestore ? this.kind.planRestore(log) : null;
  }
}
