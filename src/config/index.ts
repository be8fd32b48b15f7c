export { loadConfig, DEFAULT_CONFIG_FILE, EMBEDDED_SOURCE, INI_DEFAULTS } from './load.js';
export type { LoadConfigOptions, LoadedConfig } from './load.js';
export { ensureDirs } from './dirs.js';
export { ConfigError } from './errors.js';
export { DEMO_CONFIG } from './demo.js';
export { configSchema, configJsonSchema } from './schema.js';
export type {
  AppComponent,
  CommandServiceManager,
  ComponentConfig,
  ComponentKind,
  Config,
  ConfigInput,
  ContainerComponent,
  GithubConfig,
  HealthConfig,
  ServerConfig,
  ServiceManagerConfig,
  SystemdServiceManager,
} from './schema.js';
