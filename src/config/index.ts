export { loadConfig, configJsonSchema, configSchemaOf, DEFAULT_CONFIG_FILE, EMBEDDED_SOURCE, INI_DEFAULTS } from './load.js';
export type { KindRegistry, LoadConfigOptions, LoadedConfig } from './load.js';
export { ensureDirs } from './dirs.js';
export { ConfigError } from './errors.js';
export { DEMO_CONFIG } from './demo.js';
export type { Config, GithubConfig, HealthConfig, NatsConfig, ServerConfig, WebPubSubConfig } from './schema.js';
export type { ComponentConfig } from '../kinds/index.js';
