// Replicas of one service, each its own MeterProvider (as separate processes
// would be), exporting to the collector over OTLP/gRPC with the real
// OpenTelemetry Node SDK. Driven by tests/collector/test_otlp_node.py:
//   node replicas.mjs http://127.0.0.1:PORT SERVICE INSTANCE...
// Every 100 ms each replica adds 10**(k+1) to `requests` (a counter) and
// records 1..50 into `request.size` (an exponential histogram); its
// `inflight` gauge is 111*(k+1) and its `queue.length` up-down counter
// k+1. It prints "ready", exports every 200 ms, stops the replica named
// by a "stop INSTANCE" line on stdin, and exits when stdin closes.
import { createInterface } from "node:readline";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-grpc";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AggregationType,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";

const [url, service, ...instances] = process.argv.slice(2);

const replicas = new Map(
  instances.map((instance, k) => {
    const provider = new MeterProvider({
      resource: resourceFromAttributes({
        "service.name": service,
        "service.instance.id": instance,
        "service.version": "1.0.0",
      }),
      readers: [
        new PeriodicExportingMetricReader({
          exporter: new OTLPMetricExporter({ url }),
          exportIntervalMillis: 200,
        }),
      ],
      views: [
        {
          instrumentName: "request.size",
          aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM },
        },
      ],
    });
    const meter = provider.getMeter("replicas");
    const requests = meter.createCounter("requests", { unit: "{request}" });
    const size = meter.createHistogram("request.size", { unit: "By" });
    meter.createGauge("inflight").record(111 * (k + 1));
    meter.createUpDownCounter("queue.length").add(k + 1);
    const timer = setInterval(() => {
      requests.add(10 ** (k + 1));
      for (let v = 1; v <= 50; v++) size.record(v);
    }, 100);
    return [instance, { provider, timer }];
  }),
);

async function stop(instance) {
  const replica = replicas.get(instance);
  if (!replica) return;
  replicas.delete(instance);
  clearInterval(replica.timer);
  await replica.provider.shutdown();
  console.log(`stopped ${instance}`);
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const [command, instance] = line.trim().split(/\s+/);
  if (command === "stop") void stop(instance);
});
lines.on("close", async () => {
  await Promise.all([...replicas.keys()].map(stop));
  process.exit(0);
});
console.log("ready");
