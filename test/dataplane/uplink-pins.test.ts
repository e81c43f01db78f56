// An uplink whose name has a dot (a VLAN such as eth0.100): bpffs refuses
// file names with dots, so the link pins are named with %2e instead, and
// attach, attach again (the same program: left as it is) and detach all
// find them.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makePinDir, removePinDir } from '../../engine/bpf/index.js';
import { loadDataplane } from '../../engine/dataplane/loader.js';
import { uplinkLinkPin } from '../../engine/dataplane/paths.js';
import { attachUplink, detachUplink } from '../../engine/dataplane/uplink.js';
import { handleIn, ip } from '../support/handle.js';
import { isRoot } from '../support/netns.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.skipIf(!isRoot)('uplink pins (needs root)', () => {
  it('an uplink named up.100 is attached, found again and detached', async () => {
    const pinRoot = makePinDir('ferry-dot');
    cleanups.push(() => removePinDir(pinRoot));
    const dp = await loadDataplane(pinRoot);
    cleanups.push(() => dp.close());
    const { ns, h } = await handleIn('fdot');
    ip(ns, 'link', 'add', 'up.100', 'type', 'veth', 'peer', 'name', 'far');
    ip(ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'up.100');
    ip(ns, 'link', 'set', 'up.100', 'up');

    await attachUplink(dp, h, 'up.100');
    expect(uplinkLinkPin(pinRoot, 'up.100')).toBe(join(pinRoot, 'uplinks', 'up%2e100'));
    expect(existsSync(uplinkLinkPin(pinRoot, 'up.100'))).toBe(true);
    await attachUplink(dp, h, 'up.100'); // again: the pins are found and kept
    expect(detachUplink(pinRoot, 'up.100')).toBe(true);
    expect(existsSync(uplinkLinkPin(pinRoot, 'up.100'))).toBe(false);
  });
});
