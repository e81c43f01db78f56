// Subscriptions to rtnetlink multicast groups (`ip monitor`): a socket of its
// own per subscription, so events never interleave with request replies.
import { native } from '../native/binding.js';
import { NETLINK_ROUTE } from './constants.js';
import { netlinkError, type NetlinkError } from './errors.js';
import type { NamespaceRef } from './connection.js';
import { decodeMessages, type NetlinkMessage } from './message.js';

export interface Subscription {
  close(): void;
}

/**
 * Listens to `groups` (RTNLGRP_*) in `ns`. `onError` receives ENOBUFS when
 * the kernel dropped events because we read too slowly: the caller should
 * then relist, as informers do.
 */
export async function subscribe(
  ns: NamespaceRef,
  groups: number[],
  onMessage: (msg: NetlinkMessage) => void,
  onError: (error: NetlinkError) => void,
): Promise<Subscription> {
  const fd = await native.netlinkOpen(ns.fd, ns.name, NETLINK_ROUTE);
  const socket = new native.NetlinkSocket(
    fd,
    `netlink monitor in netns ${ns.name}`,
    (datagrams) => {
      for (const d of datagrams) for (const m of decodeMessages(d)) onMessage(m);
    },
    (e) => onError(netlinkError('ip monitor', `netns ${ns.name}`, e.errno, e.message)),
  );
  try {
    for (const g of groups) socket.addMembership(g);
  } catch (e) {
    socket.close();
    throw e;
  }
  return { close: () => socket.close() };
}
