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
  const [, host = '', port = ''] = m ?? [];
  // A TCP port is 1 to 65535: another number fails every call, each as a connection error.
  if (!m || Number(port) < 1 || Number(port) > 65_535)
    throw new Error(`expected host:port for the emulator, got "${hostPort}"`);
  return {
    // google-gax dials `${apiEndpoint}:${port}` (createStub in its grpc.ts), so an IPv6 host keeps
    // its brackets: "[::1]:8080", not "::1:8080", which gRPC cannot parse.
    apiEndpoint: host,
    port: Number(port),
    sslCreds: credentials.createInsecure(),
    universeDomain: 'googleapis.com',
  };
}
