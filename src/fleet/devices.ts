/**
 * The devices as `dune_devices` has them: each device's record (written by the device), read
 * and turned into `fleet status` lines. A record that does not parse is left out, with a note.
 */
import type { KV } from 'nats';
import { deviceRecord, ONLINE_WITHIN_MS, type DeviceRecord, type FleetDevice } from '../contract/fleet.js';

/** Whether a record was written recently enough for its device to count as online. */
export function isOnline(record: Pick<DeviceRecord, 'updated_at'> | null | undefined, now = Date.now()): boolean {
  if (!record) return false;
  const at = Date.parse(record.updated_at);
  return Number.isFinite(at) && now - at <= ONLINE_WITHIN_MS;
}

/** One device's record, or null when it has none (or an unreadable one). */
export async function readDevice(kv: KV, device: string): Promise<DeviceRecord | null> {
  const entry = await kv.get(device);
  if (!entry || entry.operation !== 'PUT') return null;
  try {
    const parsed = deviceRecord.safeParse(entry.json());
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Every device's record, by name; `unreadable` names the keys whose value is not a DeviceRecord. */
export async function readDevices(kv: KV): Promise<{ records: DeviceRecord[]; unreadable: string[] }> {
  const names: string[] = [];
  for await (const key of await kv.keys()) names.push(key);
  names.sort();
  const records: DeviceRecord[] = [];
  const unreadable: string[] = [];
  for (const name of names) {
    const record = await readDevice(kv, name);
    if (record) records.push(record);
    else if ((await kv.get(name))?.operation === 'PUT') unreadable.push(name);
  }
  return { records, unreadable };
}

/** `fleet status --json`'s line for a device. */
export function fleetDevice(record: DeviceRecord, now = Date.now()): FleetDevice {
  return {
    device: record.device,
    online: isOnline(record, now),
    updated_at: record.updated_at,
    components: record.system_info.dunebugger_components.map((c) => ({ name: c.name, installed: c.current_version, latest: c.latest_version })),
    active_run: record.active_run,
  };
}

/** The devices whose system_info lists `component`: a rollout's default device list. */
export function devicesWith(records: readonly DeviceRecord[], component: string): string[] {
  return records.filter((r) => r.system_info.dunebugger_components.some((c) => c.name === component)).map((r) => r.device);
}
