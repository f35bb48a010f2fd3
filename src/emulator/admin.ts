import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ControlError,
  DeployInput,
  EditInput,
  parse,
  SetDemandInput,
  SetQuotaInput,
  type EmulatorControl,
} from './control.js';

/**
 * The HTTP admin endpoint (JSON, 127.0.0.1 only) over the control API:
 * GET /state, /writes, /calls, /faults, /violations; POST /advance {ms}, /demand, /quota, /deploy,
 * /edit, /faults, /invariants, /reset-calls.
 */

const MAX_BODY = 1 << 20;

async function readJson(req: IncomingMessage): Promise<unknown> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > MAX_BODY) throw new ControlError('request body too large');
  }
  if (body.trim() === '') return {};
  try {
    return JSON.parse(body) as unknown;
  } catch (error) {
    throw new ControlError(
      `request body is not JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

function send(res: ServerResponse, code: number, value: unknown): void {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  res.writeHead(code, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

async function route(control: EmulatorControl, req: IncomingMessage): Promise<[number, unknown]> {
  const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
  const key = `${req.method ?? 'GET'} ${path}`;
  switch (key) {
    case 'GET /state':
      return [200, control.state()];
    case 'GET /clock':
      return [200, { now: control.now().toISOString() }];
    case 'GET /writes':
      return [200, control.writes()];
    case 'GET /calls':
      return [200, control.calls()];
    case 'POST /reset-calls':
      control.resetCalls();
      return [200, { ok: true }];
    case 'POST /advance': {
      const body = asRecord(await readJson(req));
      const ms = body['ms'];
      if (typeof ms !== 'number')
        throw new ControlError('bad advance: ms: expected a number of milliseconds');
      return [200, { now: control.advance(ms).toISOString() }];
    }
    case 'POST /demand':
      return [200, control.setDemand(parse(SetDemandInput, await readJson(req), 'demand'))];
    case 'POST /quota':
      return [200, control.setQuota(parse(SetQuotaInput, await readJson(req), 'quota'))];
    case 'POST /deploy':
      return [200, control.deploy(parse(DeployInput, await readJson(req), 'deploy'))];
    case 'POST /edit':
      return [200, control.edit(parse(EditInput, await readJson(req), 'edit'))];
    case 'GET /faults':
      return [200, control.faults()];
    case 'POST /faults':
      return [200, control.setFaults(asRecord(await readJson(req)))];
    case 'POST /invariants':
      return [200, control.setInvariants(asRecord(await readJson(req)))];
    case 'GET /violations':
      return [200, control.violations()];
    default:
      return [
        404,
        {
          error: `no route ${key}: GET /state /writes /calls /faults /violations; POST /advance /demand /quota /deploy /edit /faults /invariants /reset-calls`,
        },
      ];
  }
}

export interface AdminServer {
  readonly port: number;
  stop(): Promise<void>;
}

export async function startAdminServer(control: EmulatorControl, port = 0): Promise<AdminServer> {
  const server = createServer((req, res) => {
    route(control, req).then(
      ([code, value]) => send(res, code, value),
      (error: unknown) => {
        if (error instanceof ControlError) send(res, 400, { error: error.message });
        else send(res, 500, { error: error instanceof Error ? error.message : String(error) });
      },
    );
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolveListen());
  });
  const address = server.address() as AddressInfo;
  return {
    port: address.port,
    stop: () =>
      new Promise<void>((resolveClose, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolveClose()));
      }),
  };
}
