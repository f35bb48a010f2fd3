import { getChannelzHandlers } from '@grpc/grpc-js';

interface ChannelRef {
  channel_id: number | string;
  name: string;
}

/** Every gRPC channel not closed, from grpc-js's channelz registry (a channel stays there until closed, connected or not). */
function topChannels(): Promise<ChannelRef[]> {
  return new Promise((resolve, reject) => {
    getChannelzHandlers().GetTopChannels(
      { request: { start_channel_id: 0, max_results: 10_000 } } as never,
      ((error: Error | null, answer?: { channel: { ref: ChannelRef }[] }) => {
        if (error) reject(error);
        else resolve((answer?.channel ?? []).map((c) => c.ref));
      }) as never,
    );
  });
}

/**
 * A mark in grpc-js's channel numbering: the highest id of a channel open now. channelz numbers
 * its channels from one counter for the process, so a channel opened after the mark has a higher
 * id. The integration files that share a worker share its module registry (vitest.config.ts), so
 * the registry also holds the channels of the files before: a file that counts what its own runs
 * leave open takes a mark first and counts only what came after it, or a channel another file
 * left open, to the shared Pub/Sub emulator or to an earlier emulator whose port the system gave
 * out again, would read as its own.
 */
export async function channelMark(): Promise<number> {
  return (await topChannels()).reduce((most, c) => Math.max(most, Number(c.channel_id)), 0);
}

/**
 * The gRPC channels not closed, opened after `since` (a {@link channelMark}), whose target
 * `accept` takes: what a warm instance would keep, run after run.
 */
export async function openChannels(
  accept: (target: string) => boolean,
  since = 0,
): Promise<string[]> {
  return (await topChannels())
    .filter((c) => Number(c.channel_id) > since && accept(c.name))
    .map((c) => `${c.name} (channel ${c.channel_id})`);
}

/**
 * How long the channels may take to close after the runs that used them answered (a client's close
 * may let them go a moment after it resolves): a leak never closes, so this is a hang guard,
 * generous (a loaded machine took seconds where 5 s were allowed) and under the integration
 * tests' 60 s timeout, so that a failure names the channels still open.
 */
export const CHANNELS_CLOSE_MS = 30_000;
