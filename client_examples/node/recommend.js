// A Node client of the Loss Advisor gRPC service, written against protos/lossadvisor/v1/advisor.proto alone:
// it lists the losses, validates a spec, then streams a recommendation for a task description.
// It uses the current fields (enums such as head_type and eval_metric, google.protobuf.Duration for times);
// the deprecated string and seconds fields beside them (type, metric, budget_s, ...) still work too.
//
// Usage: node recommend.js HOST:PORT [TOKEN]
// Prints one JSON object per line: {"losses": N}, {"validate": ...}, {"progress": ...} and {"result": ...}.
"use strict";

const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO_ROOT = path.resolve(__dirname, "..", "..", "protos");
const definition = protoLoader.loadSync("lossadvisor/v1/advisor.proto", {
  includeDirs: [PROTO_ROOT],
  keepCase: true, // field names exactly as in the .proto
  longs: Number,
  defaults: false,
  oneofs: true,
  enums: String, // enum values by name, e.g. "HEAD_TYPE_MULTICLASS"
});
const { LossAdvisor } = grpc.loadPackageDefinition(definition).lossadvisor.v1;

function main() {
  const [address, token] = process.argv.slice(2);
  if (!address) {
    console.error("usage: node recommend.js HOST:PORT [TOKEN]");
    process.exit(2);
  }
  const client = new LossAdvisor(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  if (token) metadata.add("authorization", `Bearer ${token}`);
  const deadline = () => new Date(Date.now() + 120000);
  const fail = (error) => {
    console.error(`error: ${grpc.status[error.code]}: ${error.details}`);
    process.exit(1);
  };

  client.ListLosses({}, metadata, { deadline: deadline() }, (error, losses) => {
    if (error) return fail(error);
    console.log(JSON.stringify({ losses: losses.losses.length }));
    const spec = JSON.stringify({ loss: "focal", params: { gamma: 1.5 } });
    client.ValidateSpec({ spec_json: spec }, metadata, { deadline: deadline() }, (error2, checked) => {
      if (error2) return fail(error2);
      console.log(JSON.stringify({ validate: { valid: checked.valid, spec: JSON.parse(checked.normalized_spec_json) } }));
      const request = {
        task: {
          heads: [{ name: "label", head_type: "HEAD_TYPE_MULTICLASS", class_histogram: [800, 150, 50] }],
          n_features: 8,
        },
        options: { epochs: 3, repeats: 2, max_rows: 600, budget: { seconds: 30 } },
      };
      const stream = client.RecommendStream(request, metadata, { deadline: deadline() });
      stream.on("data", (event) => {
        if (event.progress) {
          console.log(JSON.stringify({ progress: { head: event.progress.head, epoch: event.progress.epoch } }));
        } else {
          const head = event.result.heads[0];
          const top = head.candidates[0];
          // Read the enum, falling back to the deprecated string (a server older than the enum fields).
          const metric = head.eval_metric ? head.eval_metric.replace(/^METRIC_/, "").toLowerCase() : head.metric;
          const trial = head.trial_duration || { seconds: 0, nanos: 0 };
          console.log(JSON.stringify({
            result: { head: head.head, head_type: head.head_type, metric, loss: top.spec.fields.loss.stringValue,
                      spec: JSON.parse(top.spec_json), mean: top.evidence.mean, tie_group: top.tie_group,
                      verdict: head.verdict, trial_s: Number(trial.seconds || 0) + (trial.nanos || 0) / 1e9 },
          }));
        }
      });
      stream.on("error", fail);
      stream.on("end", () => client.close());
    });
  });
}

main();
