// `ferry services | endpoints | maglev | conntrack | nat | metrics`: the pinned
// dataplane's maps, both families', read back for people (tables) and
// scripts (-o json). The data comes from engine/dataplane/inspect.ts; this
// file only prints. An IPv6 address:port is printed [fd00::5]:8080.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { datapathClock } from '../dataplane/clock.js';
import { collectConntrack } from '../dataplane/ct-gc.js';
import {
  flushConntrack,
  listConntrack,
  listEndpoints,
  listReverseNat,
  listServices,
  openPinnedMaps,
  parseBackendFilter,
  readMetrics,
  validateCtFilter,
  type CtFilter,
  type CtView,
  type MapRole,
  type PinnedMaps,
  type ServiceView,
} from '../dataplane/inspect.js';
import { addressPort, LB_METRICS, MAPS, type LbMetric, type CtProto } from '../dataplane/layout.js';
import { listMaglevTables } from '../dataplane/maglev-view.js';
import { conntrackFill, formatPrometheus, isOutcome, readCounters, sumFills } from '../dataplane/metrics.js';
import { DEFAULT_PIN_ROOT } from '../dataplane/paths.js';
import { action, formatDuration, paint, print, printJson, renderTable, type OutputFormat } from './output.js';

interface CommonOptions {
  pinRoot: string;
  output: OutputFormat;
}

interface FilterOptions extends CommonOptions {
  src?: string;
  dst?: string;
  proto?: CtProto;
  backend?: string;
}

function common(cmd: Command, formats: readonly string[] = ['table', 'json']): Command {
  return cmd
    .option('--pin-root <dir>', 'where the dataplane is pinned', DEFAULT_PIN_ROOT)
    .addOption(new Option('-o, --output <format>', 'output format').choices(formats).default('table'));
}

function filters(cmd: Command): Command {
  return cmd
    .option('--src <ip>', "the client's address (IPv4 or IPv6)")
    .option('--dst <ip>', 'the service address the client sent to')
    .addOption(new Option('--proto <proto>', 'L4 protocol').choices(['tcp', 'udp', 'icmp']))
    .option('--backend <id|address>', 'a backend id, or its address (IP, IP:port or [IPv6]:port)');
}

function filterOf(opts: FilterOptions): CtFilter {
  const filter: CtFilter = {};
  if (opts.src !== undefined) filter.src = opts.src;
  if (opts.dst !== undefined) filter.dst = opts.dst;
  if (opts.proto !== undefined) filter.proto = opts.proto;
  if (opts.backend !== undefined) filter.backend = parseBackendFilter(opts.backend);
  return validateCtFilter(filter);
}

/** The IPv6 maps: read when pinned, left out when not (a dataplane pinned by a ferry without them). */
type Ipv6Role = 'services6' | 'backends6' | 'revNat6' | 'conntrack6';
const IPV6_ROLES: ReadonlySet<MapRole> = new Set<Ipv6Role>(['services6', 'backends6', 'revNat6', 'conntrack6']);

/** Opens the pinned maps one command needs (the IPv6 ones among them when pinned) and closes them after it. */
async function withMaps<R extends MapRole, T>(
  pinRoot: string,
  roles: readonly R[],
  fn: (maps: Pick<PinnedMaps, Exclude<R, Ipv6Role> | 'pinRoot' | 'close'> & Partial<Pick<PinnedMaps, R & Ipv6Role>>) => T | Promise<T>,
): Promise<T> {
  const pinned = roles.filter((role) => !IPV6_ROLES.has(role) || existsSync(join(pinRoot, MAPS[role])));
  const maps = openPinnedMaps(pinRoot, pinned);
  try {
    return await fn(maps as Parameters<typeof fn>[0]);
  } finally {
    maps.close();
  }
}

/** Rows are printed as a table, or a note on stderr when there are none (kubectl's way). */
function printRows(empty: string, head: string[], rows: Array<Array<string | number>>, alignRight: number[] = []): void {
  if (rows.length === 0) process.stderr.write(`${empty}\n`);
  else print(renderTable(head, rows, { alignRight }));
}

const warn = (text: string | undefined) => (text ? paint('yellow', text) : '');

// --- services ----------------------------------------------------------------

function serviceRows(services: ServiceView[]): string[][] {
  const rows: string[][] = [];
  for (const s of services) {
    const first = [s.frontend, s.scope, s.revNatIndex === null ? '-' : String(s.revNatIndex)];
    const blank = ['', '', ''];
    const problems = s.problems.join('; ');
    if (s.slots.length === 0) rows.push([...first, '-', '-', paint('dim', '(no backends)'), warn(problems)]);
    s.slots.forEach((slot, i) => {
      const note = [i === 0 ? problems : '', slot.problem ?? ''].filter((n) => n !== '').join('; ');
      const backend = slot.backend ?? (slot.backendId === null ? '-' : 'MISSING');
      rows.push([...(i === 0 ? first : blank), String(slot.slot), slot.backendId === null ? '-' : String(slot.backendId), backend, warn(note)]);
    });
  }
  return rows;
}

// --- conntrack ----------------------------------------------------------------

function conntrackRows(entries: CtView[]): string[][] {
  return entries.map((e) => [
    e.proto,
    e.dir,
    addressPort(e.saddr, e.sport),
    addressPort(e.daddr, e.dport),
    e.state,
    e.tcpFlags === '' ? '-' : e.tcpFlags,
    formatDuration(e.idleMs),
    e.stale ? warn('expired') : formatDuration(e.expiresInMs),
    e.flags.includes('masq') || e.flags.includes('inbound') ? '-' : e.backend === null ? warn(`${e.backendId} (gone)`) : `${e.backendId} ${e.backend}`,
    [e.snat === null ? '' : `${natKind(e)} ${e.snat} client ${e.client}`, e.flags.includes('redirect') ? 'redirect' : ''].filter((x) => x !== '').join(', '),
  ]);
}

/** What rewrote a flow's source: `snat` (from outside), `masq` (a pod to outside the cluster), `hairpin`. */
function natKind(e: CtView): string {
  return e.flags.includes('masq') ? 'masq' : e.flags.includes('hairpin') ? 'hairpin' : 'snat';
}

function describeFilter(filter: CtFilter): string {
  const parts = Object.entries(filter).map(([k, v]) => `--${k} ${String(v)}`);
  return parts.length === 0 ? '' : ` matching ${parts.join(' ')}`;
}

// --- the commands ------------------------------------------------------------------

/** The maps conntrack list and flush read: both families' conntrack, and what their entries name. */
const CT_ROLES = ['conntrack', 'backends', 'revNat', 'conntrack6', 'backends6', 'revNat6'] as const;

export function registerInspectCommands(program: Command): void {
  common(program.command('services').description('frontends (VIP:port/proto) with their backend slots and rev-NAT index')).action(
    action('services', (opts: CommonOptions) =>
      withMaps(opts.pinRoot, ['services', 'backends', 'revNat', 'services6', 'backends6', 'revNat6'], (maps) => {
        const services = listServices(maps);
        if (opts.output === 'json') return printJson(services);
        printRows('no services', ['FRONTEND', 'SCOPE', 'REV-NAT', 'SLOT', 'ID', 'BACKEND', 'NOTE'], serviceRows(services), [2, 3, 4]);
      }),
    ),
  );

  common(program.command('endpoints').description('backends (id → address:port/proto) and the frontends that use them')).action(
    action('endpoints', (opts: CommonOptions) =>
      withMaps(opts.pinRoot, ['services', 'backends', 'conntrack', 'services6', 'backends6', 'conntrack6'], (maps) => {
        const endpoints = listEndpoints(maps);
        if (opts.output === 'json') return printJson(endpoints);
        const rows = endpoints.map((e) => [
          e.id,
          addressPort(e.address, e.port),
          e.proto,
          e.flows,
          e.frontends.length === 0 ? warn('(none)') : e.frontends.join(', '),
        ]);
        printRows('no endpoints', ['ID', 'BACKEND', 'PROTO', 'FLOWS', 'FRONTENDS'], rows, [0, 3]);
      }),
    ),
  );

  common(program.command('maglev').description("Maglev tables: each backend's share of entries beside the even M/N")).action(
    action('maglev', (opts: CommonOptions) =>
      withMaps(opts.pinRoot, ['services', 'backends', 'revNat', 'maglev', 'services6', 'backends6', 'revNat6'], (maps) => {
        const tables = listMaglevTables(maps);
        if (opts.output === 'json') return printJson(tables);
        const rows: Array<Array<string | number>> = [];
        for (const t of tables) {
          const head = [t.frontend, t.scope, t.size, `0x${t.seed.toString(16)}`];
          t.backends.forEach((b, i) => {
            const deviation = `${b.deviation >= 0 ? '+' : ''}${(100 * b.deviation).toFixed(1)}%`;
            rows.push([...(i === 0 ? head : ['', '', '', '']), b.backendId, b.backend ?? warn('MISSING'), b.entries, deviation, i === 0 ? warn(t.problems.join('; ')) : '']);
          });
        }
        printRows('no Maglev tables (no service asks for maglev)', ['FRONTEND', 'SCOPE', 'SIZE', 'SEED', 'ID', 'BACKEND', 'ENTRIES', 'VS M/N', 'NOTE'], rows, [2, 4, 6, 7]);
      }),
    ),
  );

  const conntrack = program.command('conntrack').description('the connection tracking table: list, flush, collect garbage');
  filters(common(conntrack.command('list', { isDefault: true }).description('entries (both directions of each flow), filtered'))).action(
    action('conntrack list', (opts: FilterOptions) => {
      const filter = filterOf(opts);
      return withMaps(opts.pinRoot, CT_ROLES, async (maps) => {
        const entries = listConntrack(maps, filter, (await datapathClock())());
        if (opts.output === 'json') return printJson(entries);
        printRows(
          `no conntrack entries${describeFilter(filter)}`,
          ['PROTO', 'DIR', 'SOURCE', 'DESTINATION', 'STATE', 'FLAGS', 'IDLE', 'EXPIRES', 'BACKEND', 'NAT'],
          conntrackRows(entries),
          [6, 7],
        );
      });
    }),
  );
  filters(common(conntrack.command('flush').description('delete the matching entries (all of them without a filter)'))).action(
    action('conntrack flush', (opts: FilterOptions) => {
      const filter = filterOf(opts);
      return withMaps(opts.pinRoot, CT_ROLES, async (maps) => {
        const deleted = flushConntrack(maps, filter, (await datapathClock())());
        if (opts.output === 'json') return printJson({ deleted });
        print(`deleted ${deleted} conntrack ${deleted === 1 ? 'entry' : 'entries'}${describeFilter(filter)}`);
      });
    }),
  );
  common(conntrack.command('gc').description('one garbage-collection pass: expired entries, and those of removed backends')).action(
    action('conntrack gc', (opts: CommonOptions) =>
      withMaps(opts.pinRoot, ['conntrack', 'backends', 'services', 'conntrack6', 'backends6', 'services6'], async (maps) => {
        const result = collectConntrack(maps, (await datapathClock())());
        if (opts.output === 'json') return printJson(result);
        print(
          `scanned ${result.scanned}: deleted ${result.expired} expired, ${result.orphaned} orphaned (backend gone), ` +
            `${result.withdrawn} withdrawn (UDP, backend left its service); ${result.remaining} of ${result.capacity} remain`,
        );
      }),
    ),
  );

  const nat = program.command('nat').description('the reverse-NAT table');
  common(nat.command('list', { isDefault: true }).description('rev-NAT index → the service address replies carry')).action(
    action('nat list', (opts: CommonOptions) =>
      withMaps(opts.pinRoot, ['services', 'revNat', 'services6', 'revNat6'], (maps) => {
        const table = listReverseNat(maps);
        if (opts.output === 'json') return printJson(table);
        const rows = table.map((r) => [r.index, addressPort(r.address, r.port), r.frontends.length === 0 ? warn('(unused)') : r.frontends.join(', ')]);
        printRows('no reverse-NAT entries', ['INDEX', 'SERVICE', 'FRONTENDS'], rows, [0]);
      }),
    ),
  );

  common(program.command('metrics').description('datapath counters (summed over CPUs) and conntrack fill'), ['table', 'json', 'prometheus']).action(
    action('metrics', (opts: { pinRoot: string; output: OutputFormat | 'prometheus' }) =>
      withMaps(opts.pinRoot, ['metrics', 'conntrack', 'conntrack6'], async (maps) => {
        if (opts.output === 'prometheus') {
          const conntrack = sumFills([maps.conntrack, maps.conntrack6].filter((m) => m !== undefined).map((m) => conntrackFill(m)));
          process.stdout.write(await formatPrometheus({ counters: readCounters(maps.metrics), conntrack }));
          return;
        }
        const view = readMetrics(maps);
        if (opts.output === 'json') return printJson(view);
        const rows = LB_METRICS.map((name: LbMetric) => [name, view.counters[name] ?? 0, isOutcome(name) ? 'packets' : 'events']);
        print(renderTable(['COUNTER', 'VALUE', 'COUNTS'], rows, { alignRight: [1] }));
        const fill = ({ entries, maxEntries }: { entries: number; maxEntries: number }) => {
          const percent = maxEntries === 0 ? 0 : (100 * entries) / maxEntries;
          return `${entries} / ${maxEntries} entries (${percent < 10 ? percent.toFixed(1) : percent.toFixed(0)}%)`;
        };
        print(`\nconntrack: ${fill(view.conntrack)}${view.conntrack6 === undefined ? '' : `\nconntrack6: ${fill(view.conntrack6)}`}`);
      }),
    ),
  );
}
