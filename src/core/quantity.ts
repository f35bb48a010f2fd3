/**
 * Kubernetes-style resource quantities as Cloud Run writes them in a container's limits: CPU in
 * vCPUs ("8", "0.5", "4000m") and memory in bytes ("32Gi", "512Mi", "16G", "1073741824"). One
 * reading for the policy's thresholds, the audit and the adapters that read the fleet. GPUs are a
 * whole count ("1"): the only `nvidia.com/gpu` value Cloud Run supports is "1"
 * (`ResourceRequirements.limits` in google/cloud/run/v2/k8s.min.proto).
 */

/** A CPU quantity: vCPUs, or thousandths of one with "m". */
const CPU_QUANTITY = /^\d+(\.\d+)?m?$/;

/** A memory quantity: bytes, with a decimal (k, M, G, T) or binary (Ki, Mi, Gi, Ti) suffix. */
export const MEMORY_QUANTITY = /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|K|M|G|T)?$/;

const MEMORY_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** A CPU quantity in vCPUs, surrounding blanks allowed; null when it is not one. */
export function parseCpu(text: string): number | null {
  const t = text.trim();
  if (!CPU_QUANTITY.test(t)) return null;
  return t.endsWith('m') ? Number(t.slice(0, -1)) / 1000 : Number(t);
}

/** A memory quantity in bytes, surrounding blanks allowed; null when it is not one. */
export function parseMemory(text: string): number | null {
  const t = text.trim();
  const m = MEMORY_QUANTITY.exec(t);
  if (!m) return null;
  const suffix = m[2] ?? '';
  const unit = MEMORY_UNITS[suffix];
  return unit === undefined ? null : Number(t.slice(0, t.length - suffix.length)) * unit;
}

/** A GPU count (`nvidia.com/gpu`): a whole number, surrounding blanks allowed; null when it is not one. */
export function parseGpuCount(text: string): number | null {
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : null;
}
