// The part of the raw-socket package's API that the probe worker uses
// (the package ships no type declarations).
declare module 'raw-socket' {
  import { EventEmitter } from 'node:events';

  export const AddressFamily: { IPv4: number; IPv6: number };
  export const Protocol: { None: number; ICMP: number; TCP: number; UDP: number; ICMPv6: number };
  export const SocketLevel: { IPPROTO_IP: number; IPPROTO_IPV6: number };

  export interface Socket extends EventEmitter {
    send(
      buffer: Buffer,
      offset: number,
      length: number,
      address: string,
      beforeCallback: (() => void) | null,
      afterCallback: (error: Error | null, bytes: number) => void,
    ): void;
    close(): void;
    /** setsockopt(level, option, &value, 4). */
    setOption(level: number, option: number, value: number): void;
    on(event: 'message', listener: (buffer: Buffer, source: string) => void): this;
    on(event: 'error', listener: (error: Error) => void): this;
    on(event: 'close', listener: () => void): this;
  }

  export function createSocket(options: { protocol?: number; addressFamily?: number; bufferSize?: number }): Socket;

  const raw: {
    AddressFamily: typeof AddressFamily;
    Protocol: typeof Protocol;
    SocketLevel: typeof SocketLevel;
    createSocket: typeof createSocket;
  };
  export default raw;
}
