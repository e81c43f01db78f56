// BPF through libbpf: specs (ELF objects), live collections of programs and
// maps, tc/tcx attachments, pins on bpffs, and typed errors.
export { attachTc, type AttachTcOptions, type NetnsRef, type TcDirection, type TcMode } from './attach.js';
export { TcAttachment, TcxAttachment, type Attachment, type AttachPoint } from './attachment.js';
export { BPFFS_ROOT, ensureBpffs, isBpffs, makePinDir, removePinDir } from './bpffs.js';
export { BpfCollection } from './collection.js';
export { possibleCpus } from './cpus.js';
export { BpfError, KeyExistsError, KeyNotFoundError, NotSupportedError } from './errors.js';
export { BpfMap, type MapInfo, type UpdateMode } from './map.js';
export { BpfObject, type MapSpec, type OpenOptions, type ProgramSpec } from './object.js';
export { openPinned, pinFd, unpinPath } from './pin.js';
export { BpfProgram, type ProgramInfo, type TestRunOptions, type TestRunResult } from './program.js';
