import { getChannelzHandlers } from '@grpc/grpc-js';

/**
 * The gRPC channels not closed whose target `accept` takes, from grpc-js's channelz registry
 * (every channel is registered there until it is closed, connected or not): what a warm instance
 * would keep, run after run.
 */
export function openChannels(accept: (target: string) => boolean): Promise<string[]> {
  return new Promise((resolve, reject) => {
    getChannelzHandlers().GetTopChannels(
      { request: { start_channel_id: 0, max_results: 10_000 } } as never,
      ((error: Error | null, answer?: { channel: { ref: { name: string } }[] }) => {
        if (error) reject(error);
        else resolve((answer?.channel ?? []).map((c) => c.ref.name).filter(accept));
      }) as never,
    );
  });
}

/**
 * How long the channels may take to close after the runs that used them answered (a client's close
 * may let them go a moment after it resolves): a leak never closes, so this is a hang guard,
 * generous (a loaded machine took seconds where 5 s were allowed) and under the integration
 * tests' 60 s timeout, so that a failure names the channels still open.
 */
export const CHANNELS_CLOSE_MS = 30_000;
