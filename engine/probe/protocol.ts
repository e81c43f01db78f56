// Messages between the Prober (main thread) and a TCP probe worker.

export interface TcpServeRequest {
  op: 'tcp-serve';
  host: string;
  port: number;
  /** Answer every line and keep the connection (for held streams); default: answer one line and close. */
  echo?: boolean;
  /** Name the server's address in each answer ("pong LINE from HOST (you are …)"): which backend of a service answered. */
  identify?: boolean;
}

export interface TcpExchangeRequest {
  op: 'tcp-exchange';
  host: string;
  port: number;
  message: string;
  timeoutMs: number;
}

/** Opens a connection that stays open for tcp-stream-send; answers its stream id. */
export interface TcpStreamOpenRequest {
  op: 'tcp-stream-open';
  host: string;
  port: number;
  timeoutMs: number;
}

/** Sends one line on an open stream and answers the reply line. */
export interface TcpStreamSendRequest {
  op: 'tcp-stream-send';
  stream: number;
  message: string;
  timeoutMs: number;
}

export interface TcpStreamCloseRequest {
  op: 'tcp-stream-close';
  stream: number;
}

/**
 * Sends one datagram from a connected UDP socket and answers the first
 * datagram back. A connected socket sees the ICMP errors its datagrams
 * draw: port unreachable fails the request with ECONNREFUSED.
 */
export interface UdpExchangeRequest {
  op: 'udp-exchange';
  host: string;
  port: number;
  message: string;
  timeoutMs: number;
}

/** Starts a datagram server answering each datagram with one line (udp-serve). */
export interface UdpServeRequest {
  op: 'udp-serve';
  host: string;
  port: number;
}

/** Opens a connected UDP socket that keeps its source port for udp-socket-send; answers its id. */
export interface UdpSocketOpenRequest {
  op: 'udp-socket-open';
  host: string;
  port: number;
  /** The source port to bind; by default the kernel picks one. */
  localPort?: number;
}

/** One datagram out of a held socket, the first one back (or its ICMP error). */
export interface UdpSocketSendRequest {
  op: 'udp-socket-send';
  socket: number;
  message: string;
  timeoutMs: number;
}

export interface UdpSocketCloseRequest {
  op: 'udp-socket-close';
  socket: number;
}

export interface CloseServersRequest {
  op: 'close-servers';
}

export type ProbeRequest = (
  | TcpServeRequest
  | TcpExchangeRequest
  | TcpStreamOpenRequest
  | TcpStreamSendRequest
  | TcpStreamCloseRequest
  | UdpExchangeRequest
  | UdpServeRequest
  | UdpSocketOpenRequest
  | UdpSocketSendRequest
  | UdpSocketCloseRequest
  | CloseServersRequest
) & { id: number };

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
