// A reservation file's content, in host-local's format: the container ID and
// the interface name separated by CRLF. Files written by host-local before it
// recorded the interface hold the container ID alone; they are read as owned
// by that container on every interface, as host-local reads them.

export const LINE_BREAK = '\r\n';

export interface Owner {
  containerId: string;
  /** '' for a record written without an interface name (old host-local). */
  ifname: string;
}

export function formatRecord(o: Owner): string {
  return `${o.containerId}${LINE_BREAK}${o.ifname}`;
}

/** The owner, or the reason the content is not a record. */
export function parseRecord(content: string): Owner | string {
  const lines = content.trim().split(LINE_BREAK);
  if (lines.length > 2) return `${lines.length} lines, expected "containerId\\r\\nifname"`;
  const containerId = lines[0]!.trim();
  const ifname = (lines[1] ?? '').trim();
  if (containerId === '') return 'empty';
  if (/\s/.test(containerId)) return 'container ID contains whitespace';
  if (/\s/.test(ifname)) return 'interface name contains whitespace';
  return { containerId, ifname };
}

/** Whether a record belongs to (containerId, ifname); a record without ifname matches any. */
export function ownedBy(record: Owner, containerId: string, ifname: string): boolean {
  return record.containerId === containerId && (record.ifname === ifname || record.ifname === '');
}

/** The reason a container ID or ifname cannot be written in a record, or undefined. */
export function checkOwner(o: Owner): string | undefined {
  if (o.containerId === '' || /\s/.test(o.containerId)) return `container ID "${o.containerId}" is empty or contains whitespace`;
  if (o.ifname === '' || /[\s/]/.test(o.ifname)) return `interface name "${o.ifname}" is empty or contains whitespace or '/'`;
  return undefined;
}
