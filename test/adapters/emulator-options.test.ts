import { describe, expect, it } from 'vitest';
import { emulatorClientOptions } from '../../src/adapters/emulator-options.js';

describe('emulatorClientOptions', () => {
  it('splits host and port as google-gax joins them again', () => {
    const v4 = emulatorClientOptions('127.0.0.1:8080');
    expect(`${v4.apiEndpoint}:${v4.port}`).toBe('127.0.0.1:8080');
    // An IPv6 host keeps its brackets: "::1:8080" is no address gRPC can dial.
    const v6 = emulatorClientOptions('[::1]:8080');
    expect(`${v6.apiEndpoint}:${v6.port}`).toBe('[::1]:8080');
    expect(v6.universeDomain).toBe('googleapis.com');
  });

  it('refuses what is not host:port', () => {
    expect(() => emulatorClientOptions('::1:8080')).toThrow(/host:port/);
    expect(() => emulatorClientOptions('localhost')).toThrow(/host:port/);
  });

  it('refuses a port no socket can use, rather than a run of failed connections', () => {
    for (const bad of ['127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:99999', '[::1]:123456'])
      expect(() => emulatorClientOptions(bad), bad).toThrow(/host:port/);
    expect(emulatorClientOptions('127.0.0.1:65535').port).toBe(65535);
  });
});
