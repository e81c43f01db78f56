// Messages between the Prober (main thread) and a TCP probe worker.

export interface TcpServeRequest {
  op: 'tcp-serve';
  host: string;
  port: number;
}

export interface TcpExchangeRequest {
  op: 'tcp-exchange';
  host: string;
  port: number;
  message: string;
  timeoutMs: number;
}

export interface CloseServersRequest {
  op: 'close-servers';
}

export type ProbeRequest = (TcpServeRequest | TcpExchangeRequest | CloseServersRequest) & { id: number };

export interface TcpExchangeResult {
  /** The server's answer line. */
  reply: string;
  /** The client address the server saw: address:port. */
  peer: string;
  connectMs: number;
  roundTripMs: number;
}

export type ProbeResponse =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { message: string; code?: string; errno?: number } };

/** What a worker is started with. */
export interface TcpWorkerData {
  nsFd: number;
  nsName: string;
}
