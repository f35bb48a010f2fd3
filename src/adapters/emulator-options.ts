import { credentials, type ChannelCredentials } from '@grpc/grpc-js';

/**
 * Options that point a Google Cloud Node client (google-gax, gRPC transport) at the emulator:
 * `new v2.ServicesClient(emulatorClientOptions('127.0.0.1:8080'))`.
 *
 * No credentials are needed: with `sslCreds` set, google-gax uses them as the channel credentials
 * as they are (no per-call auth headers), and with `universeDomain` set it never asks
 * google-auth-library for a client, so no Application Default Credentials are looked up.
 */
// A type alias, not an interface, so that it is assignable to google-gax's indexed ClientOptions.
export type EmulatorClientOptions = {
  apiEndpoint: string;
  port: number;
  sslCreds: ChannelCredentials;
  universeDomain: string;
};

export function emulatorClientOptions(hostPort: string): EmulatorClientOptions {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(hostPort.trim());
  if (!m) throw new Error(`expected host:port for the emulator, got "${hostPort}"`);
  const [, host = '', port = ''] = m;
  return {
    // google-gax dials `${apiEndpoint}:${port}` (createStub in its grpc.ts), so an IPv6 host keeps
    // its brackets: "[::1]:8080", not "::1:8080", which gRPC cannot parse.
    apiEndpoint: host,
    port: Number(port),
    sslCreds: credentials.createInsecure(),
    universeDomain: 'googleapis.com',
  };
}
