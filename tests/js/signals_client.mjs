// The OpenTelemetry JS SDK sending logs or metrics to a collector through one of its OTLP exporters.
//
//   node signals_client.mjs <logs|metrics> <http-json|http-proto|grpc> <endpoint>
//
// What it sends is fixed (tests/js/test_js_sdk_signals.py checks every field of it on arrival). It exits 0 once
// every export succeeded, 1 with the error otherwise.
import { ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { AggregationType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { OTLPLogExporter as HttpJsonLogs } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as HttpProtoLogs } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as GrpcLogs } from '@opentelemetry/exporter-logs-otlp-grpc';
import {
  AggregationTemporalityPreference,
  OTLPMetricExporter as HttpJsonMetrics,
} from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as HttpProtoMetrics } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPMetricExporter as GrpcMetrics } from '@opentelemetry/exporter-metrics-otlp-grpc';

const [signal, transport, endpoint] = process.argv.slice(2);
const TIMEOUT_MILLIS = 10_000;
const TRACE_ID = '5b8efff798038103d269b633813fc60c';
const SPAN_ID = 'eee19b7ec3c1b174';
// 1_700_000_000_123_456_789 ns: [seconds, nanoseconds], the SDK's high-resolution time.
const TIMESTAMP = [1_700_000_000, 123_456_789];
const RESOURCE = resourceFromAttributes({ 'service.name': 'js-signals-test' });
const SCOPE = ['tests.js.signals', '1.2.3'];

const BODIES = [
  'a string',
  42,
  2.5,
  true,
  new Uint8Array([0, 255, 98]),
  ['a', 1, 2.5, false],
  { role: 'user', content: [{ type: 'text', text: 'hi' }], n: 3 },
];

function exporter(kinds) {
  const make = kinds[transport];
  if (!make) throw new Error(`unknown transport ${transport}`);
  return make();
}

// The export calls' results, so a refused export fails the run instead of vanishing into the SDK's log.
function checked(inner) {
  return {
    export: (items, done) => inner.export(items, (result) => {
      if (result.code !== 0) failures.push(result.error ?? new Error(`export failed with code ${result.code}`));
      done(result);
    }),
    forceFlush: () => inner.forceFlush(),
    shutdown: () => inner.shutdown(),
    selectAggregationTemporality: inner.selectAggregationTemporality?.bind(inner),
    selectAggregation: inner.selectAggregation?.bind(inner),
  };
}
const failures = [];

async function sendLogs() {
  const url = transport === 'grpc' ? endpoint : `${endpoint}/v1/logs`;
  const logsExporter = checked(exporter({
    'http-json': () => new HttpJsonLogs({ url, timeoutMillis: TIMEOUT_MILLIS }),
    'http-proto': () => new HttpProtoLogs({ url, timeoutMillis: TIMEOUT_MILLIS }),
    grpc: () => new GrpcLogs({ url, timeoutMillis: TIMEOUT_MILLIS }),
  }));
  const provider = new LoggerProvider({ resource: RESOURCE, processors: [new SimpleLogRecordProcessor({ exporter: logsExporter })] });
  const logger = provider.getLogger(...SCOPE);
  const context = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED, isRemote: false,
  });
  BODIES.forEach((body, index) => {
    logger.emit({
      timestamp: [TIMESTAMP[0], TIMESTAMP[1] + index],
      observedTimestamp: [TIMESTAMP[0], TIMESTAMP[1] + 1000 + index],
      severityNumber: SeverityNumber.WARN,
      severityText: 'WARN',
      body,
      attributes: { 'gen_ai.provider.name': 'openai', index, ratio: 0.5, ok: true, tags: ['a', 'b'] },
      eventName: 'gen_ai.client.inference.operation.details',
      context,
    });
  });
  await provider.forceFlush();
  await provider.shutdown();
}

// A reader that collects on demand and hands the result to the exporter: every point is recorded before it runs.
class OnDemandReader extends MetricReader {
  constructor(metricExporter) {
    super({ aggregationTemporalitySelector: (kind) => metricExporter.selectAggregationTemporality(kind) });
    this.metricExporter = metricExporter;
  }
  async send() {
    const { resourceMetrics, errors } = await this.collect();
    if (errors.length) throw errors[0];
    await new Promise((resolve) => this.metricExporter.export(resourceMetrics, resolve));
  }
  async onForceFlush() {}
  async onShutdown() { await this.metricExporter.shutdown(); }
}

async function sendMetrics(temporality) {
  const url = transport === 'grpc' ? endpoint : `${endpoint}/v1/metrics`;
  const options = { url, timeoutMillis: TIMEOUT_MILLIS, temporalityPreference: temporality };
  const metricExporter = checked(exporter({
    'http-json': () => new HttpJsonMetrics(options),
    'http-proto': () => new HttpProtoMetrics(options),
    grpc: () => new GrpcMetrics(options),
  }));
  const reader = new OnDemandReader(metricExporter);
  const provider = new MeterProvider({
    resource: RESOURCE,
    readers: [reader],
    views: [
      {
        instrumentName: 'gen_ai.client.operation.duration',
        aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: [0.1, 1, 10] } },
      },
      { instrumentName: 'gen_ai.latency.exponential', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } },
    ],
  });
  const meter = provider.getMeter(...SCOPE);
  const tokens = meter.createCounter('gen_ai.client.token.usage.total', { unit: '{token}' });
  const inFlight = meter.createUpDownCounter('gen_ai.requests.in_flight');
  const latency = meter.createHistogram('gen_ai.client.operation.duration', { unit: 's' });
  const exponential = meter.createHistogram('gen_ai.latency.exponential', { unit: 's' });
  const temperature = meter.createGauge('gen_ai.request.temperature');
  meter.createObservableGauge('queue.depth').addCallback((result) => {
    result.observe(7, { queue: 'a' });
    result.observe(3.5, { queue: 'b' });
  });
  [0.05, 0.4, 1.7, 12.0].forEach((value, i) => {
    const attributes = { 'gen_ai.request.model': i % 2 ? 'gpt-4o' : 'claude', index: i % 2 };
    tokens.add(100 * (i + 1), attributes);
    inFlight.add(i % 2 ? 1 : -1, attributes);
    latency.record(value, attributes);
    exponential.record(value, attributes);
    temperature.record(0.1 * i, attributes);
  });
  await reader.send();
  await provider.shutdown();
}

try {
  if (signal === 'logs') {
    await sendLogs();
  } else if (signal === 'metrics') {
    await sendMetrics(AggregationTemporalityPreference.CUMULATIVE);
    await sendMetrics(AggregationTemporalityPreference.DELTA);
  } else {
    throw new Error(`unknown signal ${signal}`);
  }
  if (failures.length) throw failures[0];
  process.exit(0);
} catch (error) {
  console.error(error);
  process.exit(1);
}
