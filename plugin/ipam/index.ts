// ferry's IPAM: host-local's semantics and on-disk format, leak-proof.
export type { Family } from './address.js';
export { type IpamConfig, type RangeConfig, type ResolvedRange, type ResolvedRangeSet, describeRangeSet, resolveRanges } from './config.js';
export {
  IpamConfigError,
  IpamConflictError,
  IpamError,
  IpamExhaustedError,
  IpamRequestError,
  IpamStoreError,
} from './errors.js';
export { DEFAULT_DATA_DIR, type InvalidRecord, type IpamRecord, IpamStore } from './store.js';
export { type AllocateRequest, type Allocation, type RangeSetAvailability, allocate, availability, gc, release } from './allocator.js';
