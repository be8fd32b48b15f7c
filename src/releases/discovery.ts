/**
 * The shared part of a run's `discover` and `validate`: resolve the target release (the latest,
 * or the requested version), and check the release's manifest against this updater.
 */
import type { DiscoverOutput } from '../../machines/update-machine.js';
import { UpdateError } from '../core/errors.js';
import type { Component } from '../core/component.js';
import type { Installed } from '../core/installed.js';
import type { ReleaseFacts } from './facts.js';
import { checkMinimumVersions, fetchManifest, type Manifest, type RawSource, type RemoteVersion } from './manifest.js';
import { pickLatest } from './select.js';
import type { Fetched, Release } from './types.js';
import { compareVersions, parseVersion } from '../core/versions.js';

export interface ReleaseSource extends RawSource {
  listReleases(repo: string): Promise<Fetched<Release[]>>;
  releaseByVersion(repo: string, version: string): Promise<Fetched<Release> | null>;
}

export interface DiscoveryOptions {
  includePrerelease: boolean;
  /** This updater's own version (a manifest's `min_updater_version`). */
  updaterVersion: string;
  /**
   * The component a manifest's `min_remote_version` is compared with (`manifest.remoteComponent`),
   * with what it has installed now; absent or null when there is none: the updater's own version
   * stands for it.
   */
  remote?: (() => { component: string; installed: Installed }) | null;
}

export class ReleaseDiscovery {
  constructor(
    private readonly source: ReleaseSource,
    private readonly options: DiscoveryOptions,
  ) {}

  async discover(component: Component, requestedVersion: string | null, installed: Installed): Promise<DiscoverOutput> {
    let release: Release;
    let target: string;
    if (requestedVersion) {
      const wanted = parseVersion(requestedVersion);
      if (!wanted) throw new UpdateError('bad_request', `"${requestedVersion}" is not a version`);
      const found = await this.source.releaseByVersion(component.repo, wanted.replace(/\+.*$/, ''));
      if (!found || found.value.draft) throw new UpdateError('not_found', `${component.repo} has no release ${wanted} (looked for tags v${wanted} and ${wanted})`);
      release = found.value;
      target = wanted;
    } else {
      if (!installed.version) {
        throw new UpdateError('unknown_version', `cannot tell whether ${component.name} needs an update: ${installed.reason ?? 'the installed version is unknown'}. Ask for a specific version to update anyway.`);
      }
      const list = await this.source.listReleases(component.repo);
      const latest = pickLatest(list.value, this.options.includePrerelease);
      if (!latest) throw new UpdateError('not_found', `${component.repo} offers no release${this.options.includePrerelease ? '' : ' (prereleases are not offered: includePrerelease is off)'}`);
      release = latest.release;
      target = latest.version;
    }
    const upToDate = installed.version !== null && (requestedVersion ? compareVersions(installed.version, target) === 0 : compareVersions(target, installed.version) <= 0);
    const facts: ReleaseFacts = {
      tag: release.tag,
      url: release.url,
      assets: release.assets.map((a) => ({ name: a.name, url: a.url, size: a.size })),
    };
    return { fromVersion: installed.version, toVersion: target, upToDate, release: facts };
  }

  /**
   * The release's manifest (defaults when it has none); aborts when this updater, or the remote,
   * is older than the release needs. The remote's version is read only when the manifest asks.
   */
  async manifest(component: Component, tag: string): Promise<Manifest> {
    const manifest = await fetchManifest(this.source, component.repo, tag);
    const remote: RemoteVersion = (manifest.minRemoteVersion !== null ? this.options.remote?.() : null) ?? { component: null, version: this.options.updaterVersion };
    checkMinimumVersions(manifest, this.options.updaterVersion, remote);
    return manifest;
  }
}
