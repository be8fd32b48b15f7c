/**
 * The one contract source (CONTRACT.md): what clients send (requests.ts), what the updater
 * answers and sends (shapes.ts), the string limits every transport applies (limits.ts), and their
 * JSON Schema (json-schema.ts). REST routes, the message transports, the dashboard's types and
 * docs/api.md all come from here.
 */
export * from './limits.js';
export * from './shapes.js';
export * from './requests.js';
export * from './json-schema.js';
export * from './fleet.js';
export * from './fleet-view.js';
