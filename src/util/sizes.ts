/**
 * Sizes for people, in binary units: "616 bytes", "12.3 KiB", "1.5 MiB", "2.1 GiB". A download's
 * progress names both figures in the unit of the whole ("312 of 616 bytes", "0.4 of 1.2 KiB",
 * "1.5 of 12.3 MiB"), so a small file never reads "0.0 of 0.0 MiB".
 */

const UNITS = [
  { unit: 'GiB', size: 1024 ** 3 },
  { unit: 'MiB', size: 1024 ** 2 },
  { unit: 'KiB', size: 1024 },
] as const;

/** The unit that fits `bytes`: the largest of which it is at least one. */
function unitOf(bytes: number): { unit: string; size: number } {
  return UNITS.find((u) => bytes >= u.size) ?? { unit: 'bytes', size: 1 };
}

const figure = (bytes: number, size: number): string => (size === 1 ? String(Math.round(bytes)) : (bytes / size).toFixed(1));

/** "616 bytes", "1 byte", "12.3 KiB", "1.5 MiB". */
export function formatSize(bytes: number): string {
  const { unit, size } = unitOf(bytes);
  if (size === 1) return `${figure(bytes, 1)} ${bytes === 1 ? 'byte' : 'bytes'}`;
  return `${figure(bytes, size)} ${unit}`;
}

/** "312 of 616 bytes", "0.4 of 1.2 KiB"; with no known total (null or 0), what was done alone. */
export function formatProgress(done: number, total: number | null | undefined): string {
  if (!total) return formatSize(done);
  const { unit, size } = unitOf(total);
  return `${figure(done, size)} of ${figure(total, size)} ${unit}`;
}
