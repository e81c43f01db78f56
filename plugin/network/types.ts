// What the CNI verbs hand to a network mode, and what a mode reports back.

export interface AttachSpec {
  containerId: string;
  /** Interface name inside the pod (CNI_IFNAME). */
  ifname: string;
  /** Host-side veth name (hostVethName()). */
  hostVeth: string;
  mtu: number;
  /** Requested MAC for the pod interface (runtimeConfig.mac). */
  mac?: string;
  /** One per IPAM range set: `10.244.0.5/24` with the range's gateway. */
  addresses: Array<{ address: string; gateway?: string }>;
  /** IPAM routes; `gw` empty means "through the pod's gateway". */
  routes: Array<{ dst: string; gw?: string }>;
}

export interface ResultInterface {
  name: string;
  mac: string;
  mtu?: number;
  sandbox?: string;
}

/** CNI result pieces (1.x shape); `interface` indexes into `interfaces`. */
export interface Attached {
  interfaces: ResultInterface[];
  ips: Array<{ address: string; gateway?: string; interface: number }>;
  routes: Array<{ dst: string; gw?: string }>;
}
