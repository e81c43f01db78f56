// Argument checks made before anything crosses into C++: the addon trusts
// sizes and types it is given (the kernel copies key_size bytes from a
// pointer), so a wrong Buffer must stop here with a clear TypeError/RangeError.

export function checkBuffer(what: string, value: unknown, size: number): asserts value is Buffer {
  if (!Buffer.isBuffer(value)) throw new TypeError(`${what} must be a Buffer`);
  if (value.length !== size) throw new RangeError(`${what} must be ${size} bytes, got ${value.length}`);
}

export function checkInteger(what: string, value: unknown, min: number, max: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
}

export function checkOneOf<T extends string>(what: string, value: unknown, allowed: readonly T[]): asserts value is T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new TypeError(`${what} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${String(value)}`);
  }
}

export function checkString(what: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`${what} must be a non-empty string`);
}

export const FD_MAX = 0x7fffffff;
