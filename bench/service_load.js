// A load generator for the Loss Advisor service, independent of the server's code: @grpc/grpc-js against the
// .proto. Keeps CONCURRENCY calls in flight for SECONDS and prints one JSON line with throughput and latency.
//
// Usage: node bench/service_load.js HOST:PORT recommend|health CONCURRENCY SECONDS
"use strict";

const path = require("path");
const modules = path.resolve(__dirname, "..", "client_examples", "node", "node_modules");
const grpc = require(path.join(modules, "@grpc/grpc-js"));
const protoLoader = require(path.join(modules, "@grpc/proto-loader"));

const [address, method, concurrencyText, secondsText] = process.argv.slice(2);
const concurrency = Number(concurrencyText || 8);
const seconds = Number(secondsText || 10);
const protos = path.resolve(__dirname, "..", "protos");
const definition = protoLoader.loadSync("lossadvisor/v1/advisor.proto", { includeDirs: [protos], keepCase: true });
const { LossAdvisor } = grpc.loadPackageDefinition(definition).lossadvisor.v1;

// The standard health service, declared inline so that no generated code is needed.
const healthDefinition = protoLoader.fromJSON({
  nested: { grpc: { nested: { health: { nested: { v1: { nested: {
    HealthCheckRequest: { fields: { service: { type: "string", id: 1 } } },
    HealthCheckResponse: { fields: { status: { type: "int32", id: 1 } } },
    Health: { methods: { Check: { requestType: "HealthCheckRequest", responseType: "HealthCheckResponse" } } },
  } } } } } } },
});
const { Health } = grpc.loadPackageDefinition(protoLoader.loadSync.bind ? healthDefinition : healthDefinition)
  .grpc.health.v1;

const request = { task: { heads: [{ type: "multiclass", class_histogram: [900, 90, 10] }] }, options: { trials: false } };
const client = method === "health" ? new Health(address, grpc.credentials.createInsecure())
  : new LossAdvisor(address, grpc.credentials.createInsecure());
const call = method === "health" ? (done) => client.Check({ service: "" }, done)
  : (done) => client.Recommend(request, done);

const latencies = [];
let errors = 0;
const end = Date.now() + seconds * 1000;

function loop() {
  if (Date.now() >= end) return Promise.resolve();
  const started = process.hrtime.bigint();
  return new Promise((resolve) => call((error) => {
    if (error) errors += 1;
    else latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    resolve();
  })).then(loop);
}

Promise.all(Array.from({ length: concurrency }, loop)).then(() => {
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : null;
  console.log(JSON.stringify({ method, concurrency, seconds, calls: latencies.length, errors,
    rps: latencies.length / seconds, p50_ms: at(0.5), p99_ms: at(0.99) }));
  client.close();
});
