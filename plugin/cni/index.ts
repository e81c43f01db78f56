// plugin/cni: the CNI protocol layer (no networking). The verbs themselves
// live in plugin/commands and are handed to runCni / cniMain.
export { appendResult } from './chain.js';
export { checkSupported, DEFAULT_LOG_FILE, HONOURED_CAPABILITIES, IPAM_TYPES, parseNetConf, type Attachment, type NetConf } from './config.js';
export { errorOutput, runCni, type CniInput, type CniOutput, type RunOptions } from './dispatch.js';
export { KNOWN_ARGS, parseCniArgs, parseEnv, type CniEnv, type K8sArgs } from './env.js';
export * from './errors.js';
export { createLogger, type LogLevel, type LogSettings, type Logger } from './log.js';
export type { AddRequest, CheckRequest, CniHandlers, CniRequest, DelRequest, GcRequest, StatusRequest } from './request.js';
export { convertResult, emptyResult, parseResult, type Dns, type Interface, type IpConfig, type Result, type Route, type WireResult } from './result.js';
export { cniMain, readStdin } from './stdio.js';
export * from './versions.js';
