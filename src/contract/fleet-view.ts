/**
 * `GET /api/fleet` (a device with `nats` configured): every device of `dune_devices` and every
 * rollout of `dune_rollouts`, for the dashboard's Fleet page. Built from the shapes of fleet.ts.
 */
import { z } from 'zod';
import { fleetDevice, rolloutRecord } from './fleet.js';

export const fleetView = z.object({
  devices: z.array(fleetDevice).meta({ description: 'Every device that wrote its record, by name; `online` when written within 120 s.' }),
  rollouts: z.array(rolloutRecord).meta({ description: 'Every rollout, newest first (`created_at`).' }),
});
export type FleetView = z.output<typeof fleetView>;
