/** Cloud Monitoring v3: what the fleet used, per service and minute; the governor's own figures. */

import type { GovernorMetricPoint } from '../core/governor-metrics.js';

/** One time series: one service in one region, one value per aligned minute. */
export interface MetricSeries {
  service: string;
  region: string;
  /**
   * Oldest first, one per time; `at` is the end of the aligned interval, milliseconds since the
   * epoch, within the window asked (after its start, not after its end); `value` finite, and never
   * negative for a count. An answer that breaks this is an error, never series.
   */
  points: { at: number; value: number }[];
}

export interface TimeWindow {
  startMs: number;
  endMs: number;
}

/** Cloud Monitoring v3: one ListTimeSeries per metric per project, grouped by service and region. */
export interface MonitoringPort {
  /** Instances (active + idle) per minute, summed across revisions. */
  instanceCounts(project: string, window: TimeWindow): Promise<MetricSeries[]>;
  /** Mean GPU utilization (0–1) per minute across the service's instances. */
  gpuUtilization(project: string, window: TimeWindow): Promise<MetricSeries[]>;
  /**
   * Requests per minute that reached an instance (`run.googleapis.com/request_count`, every
   * response code but 429), summed across revisions. A minute without a point had none.
   */
  servedRequests(project: string, window: TimeWindow): Promise<MetricSeries[]>;
  /**
   * Requests per minute Cloud Run answered 429, summed across revisions: the logs-based counter
   * metric on Cloud Run's request log that terraform/ defines (`request_count` leaves them out).
   * A minute without a point had none. Where the metric is not defined, Monitoring knows no such
   * metric (INVALID_ARGUMENT "The provided filter doesn't refer to any known metric.", or
   * NOT_FOUND "Cannot find metric(s) that match type", also for up to 10 minutes after it is
   * defined): a NotFoundError saying to deploy it; the refusals are then not known, never none.
   */
  refusedRequests(project: string, window: TimeWindow): Promise<MetricSeries[]>;
  /**
   * The smallest read that proves `monitoring.timeSeries.list` on the project (Monitoring has no
   * TestIamPermissions): resolves when the read is allowed, throws its error otherwise.
   */
  probe?(project: string, nowMs: number): Promise<void>;
  /**
   * Writes one run's own figures to the project's custom metrics, each point at `atMs` (one
   * CreateTimeSeries call per 200 series). `too-soon`: Monitoring already holds points at or
   * within 5 s before `atMs` (another run just wrote), so these were not needed. Absent: the
   * governor writes none (in-memory ports).
   */
  writeGovernorMetrics?(
    project: string,
    atMs: number,
    points: readonly GovernorMetricPoint[],
  ): Promise<'written' | 'too-soon'>;
}
