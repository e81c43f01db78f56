#!/usr/bin/env python3
# A packet capture for the multi-node tests, independent of ferry: an
# AF_PACKET socket on one interface of the namespace it runs in (run it
# with nsenter), both directions. It prints {"ready": true} once bound,
# then one JSON line per IPv4 frame until its stdin closes:
#   {"src", "dst", "proto", "len", "df", "mf", "fragOffset",
#    "sport", "dport",                       (UDP and TCP)
#    "vxlan": {"vni", "inner": {...}}}       (UDP to the VXLAN port)
# Usage: capture.py IFNAME VXLAN_PORT
import json
import os
import select
import socket
import struct
import sys

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800


def ipv4(b, vxlan_port):
    if len(b) < 20:
        return None
    ihl = (b[0] & 0x0F) * 4
    (total,) = struct.unpack('!H', b[2:4])
    (frag,) = struct.unpack('!H', b[6:8])
    d = {
        'src': socket.inet_ntoa(b[12:16]),
        'dst': socket.inet_ntoa(b[16:20]),
        'proto': b[9],
        'len': total,
        'df': bool(frag & 0x4000),
        'mf': bool(frag & 0x2000),
        'fragOffset': (frag & 0x1FFF) * 8,
    }
    l4 = b[ihl:]
    if d['fragOffset'] == 0 and d['proto'] in (6, 17) and len(l4) >= 4:
        d['sport'], d['dport'] = struct.unpack('!HH', l4[:4])
    if d['proto'] == 17 and d.get('dport') == vxlan_port and len(l4) >= 8 + 8 + 14:
        header = l4[8:16]
        inner = l4[16:]
        (ethertype,) = struct.unpack('!H', inner[12:14])
        d['vxlan'] = {'vni': int.from_bytes(header[4:7], 'big'), 'inner': ipv4(inner[14:], None) if ethertype == ETH_P_IP else None}
    return d


def main():
    ifname, vxlan_port = sys.argv[1], int(sys.argv[2])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    print(json.dumps({'ready': True}), flush=True)
    stdin = sys.stdin.fileno()
    while True:
        readable, _, _ = select.select([s, stdin], [], [])
        if s in readable:
            show(s.recv(65535), vxlan_port)
        if stdin in readable and os.read(stdin, 4096) == b'':
            # Frames already queued were seen before the caller stopped us: print them too.
            s.setblocking(False)
            try:
                while True:
                    show(s.recv(65535), vxlan_port)
            except BlockingIOError:
                return


def show(frame, vxlan_port):
    if len(frame) >= 14 and struct.unpack('!H', frame[12:14])[0] == ETH_P_IP:
        d = ipv4(frame[14:], vxlan_port)
        if d is not None:
            print(json.dumps(d), flush=True)


if __name__ == '__main__':
    main()
