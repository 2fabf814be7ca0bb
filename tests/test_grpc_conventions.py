"""gRPC in the ecosystem's conventions (issue 12), against a real server process: reflection v1 beside
v1alpha; enums with an UNSPECIFIED zero that mirror the Python value sets; google.api.field_behavior;
google.protobuf.Duration for times; deprecated twins filled on output and accepted on input (disagreement is
INVALID_ARGUMENT naming both fields); verdict, caveats and recipes through the Python client; client paths."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import get_args

import grpc
import pytest
from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, duration_pb2, message_factory
from grpc_reflection.v1alpha import reflection_pb2

import advisor
from advisor.client import AdvisorClient, DataError, ServiceError, build_request
from advisor.heads import HEAD_TYPES, HIGHER_IS_BETTER, METRICS_BY_HEAD, Metric
from advisor.recipes import Recipe
from advisor.recommendation import HeadResult
from advisor.rules.schema import PostHoc
from advisor.service import reflection_v1
from advisor.service.convert import DATASET_LIMIT_BYTES, enum_values, recommendation_from_proto
from advisor.task import TaskDescription
from lossadvisor.v1 import advisor_pb2 as pb
from tests.service_helpers import ServerProcess, reflect, rpc_error

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT / "protos/lossadvisor/v1/advisor.proto"
ADVISOR = "lossadvisor.v1.LossAdvisor"
V1, V1ALPHA = "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"
RULES = pb.Options(trials=False)
# Imbalanced and calibration-needing: the rules propose temperature scaling and logit adjustment (with priors).
CALIBRATED = {"heads": [{"name": "label", "type": "multiclass", "class_histogram": [900, 90, 10],
                         "calibration_needed": True}], "n_features": 8}  # fmt: skip
TWO_HEADS = {"heads": [{"name": "churn", "type": "binary", "class_histogram": [900, 100], "metric": "accuracy"},
                       {"name": "spend", "type": "regression", "target": {"mean": 3.0, "variance": 4.0}}],
             "n_features": 8}  # fmt: skip
# The Python value set each proto enum mirrors: the one place the knowledge lives (drift fails a test).
PYTHON_SETS = {
    "HeadType": HEAD_TYPES,
    "Metric": get_args(Metric),
    "StopReason": get_args(HeadResult.model_fields["stopped_by"].annotation),
    "EvidenceSource": get_args(HeadResult.model_fields["evidence_source"].annotation),
    "TaskSource": get_args(TaskDescription.model_fields["source"].annotation),
    "RecipeKind": get_args(PostHoc.model_fields["kind"].annotation),
    "Activation": get_args(Recipe.model_fields["activation"].annotation),
}


@pytest.fixture(scope="module")
def server():
    process = ServerProcess("--workers", "1")
    yield process
    assert process.stop() == 0


def _seconds(value: duration_pb2.Duration) -> float:
    return value.ToNanoseconds() / 1e9


# ---------------------------------------------------------------------------------------------- reflection


@pytest.mark.parametrize("service", [V1, V1ALPHA])
def test_reflection_v1_and_v1alpha_list_the_services_and_describe_the_advisor(server, service):
    listed, described, itself = reflect(server.channel, service, [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=ADVISOR),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=V1),
    ])  # fmt: skip
    names = {s.name for s in listed.list_services_response.service}
    assert names == {ADVISOR, "google.longrunning.Operations", "grpc.health.v1.Health", V1, V1ALPHA}
    files = {}
    for raw in described.file_descriptor_response.file_descriptor_proto:
        file = descriptor_pb2.FileDescriptorProto.FromString(raw)
        files[file.name] = file
    compiled = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(compiled)
    # The descriptor the server runs, field_behavior annotations and deprecations included.
    assert files["lossadvisor/v1/advisor.proto"] == compiled
    assert {"google/api/field_behavior.proto", "google/protobuf/duration.proto"} <= set(files)  # dependencies
    v1_files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
                for raw in itself.file_descriptor_response.file_descriptor_proto]  # fmt: skip
    assert [(f.name, f.package, [s.name for s in f.service]) for f in v1_files] == [
        ("grpc/reflection/v1/reflection.proto", "grpc.reflection.v1", ["ServerReflection"])
    ]


def _shape(message) -> list[tuple]:
    """What decides a message's wire form: each field's name, number, type, repetition and message type."""
    return [
        (f.name, f.number, f.type, f.is_repeated, f.message_type and f.message_type.name)
        for f in message.fields
    ]


def test_the_v1_reflection_messages_are_v1alpha_s_on_the_wire():
    pool = descriptor_pool.DescriptorPool()
    reflection_v1._register_v1_descriptor(pool)
    for name in (
        "ServerReflectionRequest",
        "ServerReflectionResponse",
        "FileDescriptorResponse",
        "ErrorResponse",
    ):
        v1 = pool.FindMessageTypeByName(f"grpc.reflection.v1.{name}")
        alpha = reflection_pb2.DESCRIPTOR.message_types_by_name[name]
        assert _shape(v1) == _shape(alpha), name
    request = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionRequest")
    )
    sent = request(host="h", file_containing_symbol=ADVISOR).SerializeToString()
    assert reflection_pb2.ServerReflectionRequest.FromString(sent).file_containing_symbol == ADVISOR


BUF = ROOT / "client_examples/node/node_modules/.bin/buf"


@pytest.mark.parametrize("protocol", ["grpc-v1", "grpc-v1alpha"])
def test_buf_curl_reads_each_reflection_protocol(server, protocol):
    """An independent client (buf curl; grpcurl is not installed here) pinned to one reflection protocol."""
    if not BUF.exists():
        pytest.skip("buf is not installed: run `npm ci --prefix client_examples/node`")
    url = f"http://{server.address}"
    listed = subprocess.run([str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect-protocol",
                             protocol, "--list-services", url], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert ADVISOR in listed.stdout.split() and V1 in listed.stdout.split()
    body = '{"task": {"heads": [{"head_type": "HEAD_TYPE_BINARY", "class_histogram": [950, 50]}]}, ' \
           '"options": {"trials": false, "budget": "12.5s"}}'  # fmt: skip
    called = subprocess.run([str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect-protocol",
                             protocol, "-d", body, f"{url}/{ADVISOR}/Recommend"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert called.returncode == 0, called.stderr
    assert '"headType": "HEAD_TYPE_BINARY"' in called.stdout and '"budget": "12.500s"' in called.stdout


# ---------------------------------------------------------------------------------------------- the schema


def test_every_enum_mirrors_its_python_set_with_an_unspecified_zero():
    assert set(pb.DESCRIPTOR.enum_types_by_name) == set(PYTHON_SETS)
    for name, values in PYTHON_SETS.items():
        enum = getattr(pb, name)
        zero = enum.DESCRIPTOR.values_by_number[0].name
        assert zero == re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper() + "_UNSPECIFIED", name
        assert sorted(enum_values(enum)) == sorted(values), name
    assert (
        set(HIGHER_IS_BETTER) == set(get_args(Metric)) == {m for ms in METRICS_BY_HEAD.values() for m in ms}
    )


def test_the_metric_lists_in_the_proto_comment_are_the_python_ones():
    text = PROTO.read_text()
    block = text[
        text.index("ListLosses does not list metrics:") : text.index("The deviances (lower is better)")
    ]
    words = " ".join(line.strip().removeprefix("//") for line in block.splitlines()[1:])
    stated = {}
    for part in words.split(";"):
        head_type, metrics = part.split(":")
        stated[head_type.strip()] = tuple(metrics.replace(".", "").split())
    assert stated == METRICS_BY_HEAD


def _behaviors(field) -> set[str]:
    values = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return {field_behavior_pb2.FieldBehavior.Name(value) for value in values}


def _reachable(roots) -> dict:
    """This package's messages reachable from ``roots`` by full name (map entries left out)."""
    found, todo = {}, list(roots)
    while todo:
        message = todo.pop()
        if message.full_name in found or not message.full_name.startswith("lossadvisor."):
            continue
        if not message.GetOptions().map_entry:
            found[message.full_name] = message
        todo += [f.message_type for f in message.fields if f.message_type is not None]
    return found


def _messages(found: dict, leave_out: dict | None = None) -> list:
    return [message for name, message in sorted(found.items()) if name not in (leave_out or {})]


def test_field_behavior_marks_every_request_field_and_every_output():
    methods = pb.DESCRIPTOR.services_by_name["LossAdvisor"].methods
    requests = _reachable(m.input_type for m in methods)
    # A long-running operation's metadata is an output too (its response is RecommendResponse).
    responses = _reachable([*(m.output_type for m in methods), pb.RecommendMetadata.DESCRIPTOR])
    for message in _messages(requests):
        for field in message.fields:
            assert _behaviors(field) & {"REQUIRED", "OPTIONAL", "OUTPUT_ONLY"}, f"{field.full_name} has none"
    for message in _messages(responses, leave_out=requests):
        for field in message.fields:
            assert "OUTPUT_ONLY" in _behaviors(field), f"{field.full_name} is not OUTPUT_ONLY"
    in_requests = [f for m in _messages(requests) for f in m.fields]
    assert {f.full_name for f in in_requests if "OUTPUT_ONLY" in _behaviors(f)} == {
        "lossadvisor.v1.TaskDescription.source", "lossadvisor.v1.TaskDescription.task_source",
        "lossadvisor.v1.TaskDescription.notes",
    }  # fmt: skip
    assert {f.full_name for f in in_requests if "REQUIRED" in _behaviors(f)} == {
        "lossadvisor.v1.TaskDescription.heads", "lossadvisor.v1.LabelNoise.rate",
        "lossadvisor.v1.ValidateSpecRequest.spec_json",
    }  # fmt: skip


# The fields issue 12 deprecated: kept with their number and type (never renumbered or retyped).
DEPRECATED = [
    ("TaskDescription", "source", 4, "string", "task_source"),
    ("Head", "type", 2, "string", "head_type"),
    ("Head", "metric", 10, "string", "eval_metric"),
    ("Dataset", "task_type", 4, "string", "head_type"),
    ("Options", "budget_s", 1, "double", "budget"),
    ("Options", "metric", 7, "string", "eval_metric"),
    ("RecommendResponse", "timings", 5, "message", "stage_durations"),
    ("HeadResult", "type", 2, "string", "head_type"),
    ("HeadResult", "metric", 3, "string", "eval_metric"),
    ("HeadResult", "evidence_source", 7, "string", "evidence_basis"),
    ("HeadResult", "stopped_by", 8, "string", "stop_reason"),
    ("HeadResult", "trial_seconds", 10, "double", "trial_duration"),
    ("PostHoc", "kind", 1, "string", "recipe_kind"),
    ("Evidence", "metric", 1, "string", "eval_metric"),
    ("Settings", "budget_s", 1, "double", "budget"),
    ("Progress", "elapsed_s", 7, "double", "elapsed"),
    ("LossEntry", "heads", 3, "string", "head_types"),
]
_TYPES = {"string": 9, "double": 1, "message": 11}


@pytest.mark.parametrize(("message", "name", "number", "kind", "replacement"), DEPRECATED)
def test_deprecated_fields_keep_number_and_type_and_name_their_replacement(message, name, number, kind,
                                                                           replacement):  # fmt: skip
    descriptor = pb.DESCRIPTOR.message_types_by_name[message]
    field = descriptor.fields_by_name[name]
    assert (field.number, field.type, field.GetOptions().deprecated) == (number, _TYPES[kind], True)
    new = descriptor.fields_by_name[replacement]
    assert not new.GetOptions().deprecated and (new.enum_type or new.message_type) is not None
    # The .proto comment right above the field points at the replacement.
    body = PROTO.read_text().split(f"\nmessage {message} {{\n", 1)[1].split("\n}\n", 1)[0]
    comment = re.search(rf"((?:\n\s*//[^\n]*)+)\n[^\n]*\b{name} = {number} \[deprecated = true", "\n" + body)
    assert comment and f"Deprecated: use {replacement}." in comment.group(1)


def test_every_deprecated_field_is_in_the_table_above():
    marked = {(m.name, f.name) for m in pb.DESCRIPTOR.message_types_by_name.values() for f in m.fields
              if f.GetOptions().deprecated}  # fmt: skip
    assert marked == {(message, name) for message, name, *_ in DEPRECATED}


def test_the_vendored_field_behavior_proto_matches_the_runtime_one():
    """protos/google/api/field_behavior.proto is there for clients that compile from protos/ alone (Node, buf,
    protoc); the Python runtime uses googleapis-common-protos' copy. What this API uses must agree."""
    text = (ROOT / "protos/google/api/field_behavior.proto").read_text()
    assert re.search(r"repeated google\.api\.FieldBehavior field_behavior = (\d+)", text).group(1) == str(
        field_behavior_pb2.field_behavior.number
    )
    block = text[text.index("enum FieldBehavior {") :]
    numbers = {name: int(number) for name, number in re.findall(r"^\s*([A-Z_]+) = (\d+);", block, re.M)}
    for name in ("OPTIONAL", "REQUIRED", "OUTPUT_ONLY"):
        assert numbers[name] == field_behavior_pb2.FieldBehavior.Value(name)


# ---------------------------------------------------------------------------------------------- enums on the wire


def test_an_answer_fills_every_enum_and_duration_beside_its_deprecated_twin(server):
    response = server.stub.Recommend(
        build_request(CALIBRATED, trials=False), timeout=30
    )  # the client sends both twins, agreeing
    head = response.heads[0]
    assert (head.type, pb.HeadType.Name(head.head_type)) == ("multiclass", "HEAD_TYPE_MULTICLASS")
    assert pb.Metric.Name(head.eval_metric) == f"METRIC_{head.metric.upper()}" and head.metric
    assert (head.stopped_by, pb.StopReason.Name(head.stop_reason)) == ("not_run", "STOP_REASON_NOT_RUN")
    assert (head.evidence_source, pb.EvidenceSource.Name(head.evidence_basis)) == (
        "rules",
        "EVIDENCE_SOURCE_RULES",
    )
    assert head.HasField("trial_duration") and _seconds(head.trial_duration) == head.trial_seconds == 0
    task = response.task
    assert (task.source, pb.TaskSource.Name(task.task_source)) == ("description", "TASK_SOURCE_DESCRIPTION")
    assert pb.HeadType.Name(task.heads[0].head_type) == "HEAD_TYPE_MULTICLASS"
    assert pb.Metric.Name(task.heads[0].eval_metric) == f"METRIC_{task.heads[0].metric.upper()}"
    recipes = [c.post_hoc for c in head.candidates if c.HasField("post_hoc")]
    assert {p.kind for p in recipes} >= {"temperature", "logit_adjustment"}
    for recipe in recipes:
        assert pb.RecipeKind.Name(recipe.recipe_kind) == f"RECIPE_KIND_{recipe.kind.upper()}"
        assert pb.Activation.Name(recipe.activation) == "ACTIVATION_SOFTMAX" and recipe.description
    adjust = next(p for p in recipes if p.kind == "logit_adjustment")
    assert len(adjust.class_priors) == 3 and abs(sum(adjust.class_priors) - 1) < 1e-6
    assert not adjust.HasField("tau") and "log pi" in adjust.description  # rules alone: tau not tuned yet
    settings = response.settings
    assert _seconds(settings.budget) == settings.budget_s == 300
    assert set(response.stage_durations) == set(response.timings) >= {"rules", "total"}
    for name, seconds in response.timings.items():
        assert abs(_seconds(response.stage_durations[name]) - seconds) < 1e-9
    losses = server.stub.ListLosses(pb.ListLossesRequest(), timeout=10).losses
    for entry in losses:
        assert [pb.HeadType.Name(t) for t in entry.head_types] == [
            f"HEAD_TYPE_{h.upper()}" for h in entry.heads
        ]


def _without_times(response: pb.RecommendResponse) -> pb.RecommendResponse:
    response.ClearField("timings")
    response.ClearField("stage_durations")
    return response


def test_a_request_in_enums_and_durations_alone_gets_the_answer_the_strings_get(server):
    histogram = [700, 200, 100]
    old = pb.RecommendRequest(
        task=pb.TaskDescription(
            heads=[pb.Head(type="multiclass", metric="macro_f1", class_histogram=histogram)]
        ),
        options=pb.Options(trials=False, budget_s=12.5),
    )
    new = pb.RecommendRequest(
        task=pb.TaskDescription(heads=[pb.Head(head_type=pb.HEAD_TYPE_MULTICLASS, eval_metric=pb.METRIC_MACRO_F1,
                                               class_histogram=histogram)]),
        options=pb.Options(trials=False, budget=duration_pb2.Duration(seconds=12, nanos=500_000_000)),
    )  # fmt: skip
    both = pb.RecommendRequest(
        task=pb.TaskDescription(
            heads=[
                pb.Head(
                    type="multiclass",
                    head_type=pb.HEAD_TYPE_MULTICLASS,
                    metric="macro_f1",
                    eval_metric=pb.METRIC_MACRO_F1,
                    class_histogram=histogram,
                )
            ]
        ),
        options=pb.Options(trials=False, budget_s=12.5, budget=new.options.budget),
    )  # every twin set, agreeing
    answers = [_without_times(server.stub.Recommend(r, timeout=30)) for r in (old, new, both)]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0].heads[0].metric == "macro_f1" and answers[0].settings.budget_s == 12.5
    override = pb.RecommendRequest(
        task=new.task, options=pb.Options(trials=False, eval_metric=pb.METRIC_ACCURACY)
    )
    assert server.stub.Recommend(override, timeout=30).heads[0].eval_metric == pb.METRIC_ACCURACY
    # Output-only fields in a request are ignored, never an error (google.api.field_behavior OUTPUT_ONLY).
    ignored = pb.RecommendRequest()
    ignored.CopyFrom(new)
    ignored.task.source, ignored.task.task_source = "data", pb.TASK_SOURCE_DATA
    assert server.stub.Recommend(ignored, timeout=30).task.task_source == pb.TASK_SOURCE_DESCRIPTION


ORDINAL_CSV = ("x,grade\n" + "".join(f"{i % 13},{i % 4}\n" for i in range(200))).encode()


def test_a_dataset_s_head_type_forces_the_profiled_type_as_task_type_does(server):
    for dataset in (pb.Dataset(csv=ORDINAL_CSV, target_columns=["grade"], task_type="ordinal"),
                    pb.Dataset(csv=ORDINAL_CSV, target_columns=["grade"], head_type=pb.HEAD_TYPE_ORDINAL)):  # fmt: skip
        head = server.stub.Recommend(pb.RecommendRequest(dataset=dataset, options=RULES), timeout=60).heads[0]
        assert (head.type, head.head_type) == ("ordinal", pb.HEAD_TYPE_ORDINAL)
    plain = pb.RecommendRequest(dataset=pb.Dataset(csv=ORDINAL_CSV, target_columns=["grade"]), options=RULES)
    assert server.stub.Recommend(plain, timeout=60).heads[0].head_type != pb.HEAD_TYPE_ORDINAL


def _head(**fields) -> pb.RecommendRequest:
    return pb.RecommendRequest(task=pb.TaskDescription(heads=[pb.Head(class_histogram=[50, 30], **fields)]),
                               options=RULES)  # fmt: skip


@pytest.mark.parametrize(
    ("request_", "field", "named", "reason"),
    [
        (_head(type="binary", head_type=pb.HEAD_TYPE_MULTICLASS), "task.heads.0.head_type",
         "task.heads.0.type 'binary'", "INVALID_TASK"),
        (_head(type="binary", metric="accuracy", eval_metric=pb.METRIC_MACRO_F1), "task.heads.0.eval_metric",
         "task.heads.0.metric 'accuracy'", "INVALID_TASK"),
        (pb.RecommendRequest(task=_head(type="binary").task, options=pb.Options(
            trials=False, metric="accuracy", eval_metric=pb.METRIC_MACRO_F1)), "options.eval_metric",
         "options.metric 'accuracy'", "INVALID_OPTIONS"),
        (pb.RecommendRequest(task=_head(type="binary").task, options=pb.Options(
            trials=False, budget_s=10, budget=duration_pb2.Duration(seconds=20))), "options.budget",
         "options.budget_s 10.0", "INVALID_OPTIONS"),
        (pb.RecommendRequest(dataset=pb.Dataset(csv=ORDINAL_CSV, target_columns=["grade"], task_type="ordinal",
                                                head_type=pb.HEAD_TYPE_MULTICLASS), options=RULES),
         "dataset.head_type", "dataset.task_type 'ordinal'", "INVALID_DATASET"),
    ],
)  # fmt: skip
def test_twins_that_disagree_are_invalid_argument_naming_both_fields(server, request_, field, named, reason):
    code, found = rpc_error(server.stub.Recommend, request_, timeout=30)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and found["reason"] == reason
    assert field in found["fields"], found
    assert named in found["fields"][field] and "disagrees" in found["fields"][field]


@pytest.mark.parametrize(
    ("request_", "field", "words"),
    [
        (_head(head_type=99), "task.heads.0.head_type", "not a HeadType"),
        (_head(), "task.heads.0.head_type", "required"),
        (_head(head_type=pb.HEAD_TYPE_MULTICLASS, eval_metric=pb.METRIC_DICE), "task.heads.0.eval_metric",
         "does not fit a multiclass head"),
        (_head(type="multiclass", metric="dice"), "task.heads.0.metric", "does not fit a multiclass head"),
        (pb.RecommendRequest(task=_head(type="binary").task, options=pb.Options(
            trials=False, budget=duration_pb2.Duration(seconds=-3))), "options.budget", "positive"),
        (pb.RecommendRequest(task=_head(type="binary").task, options=pb.Options(
            trials=False, budget=duration_pb2.Duration(seconds=3, nanos=-5))), "options.budget", "different signs"),
        (pb.RecommendRequest(task=_head(type="multiclass").task, options=pb.Options(
            trials=False, eval_metric=pb.METRIC_DICE)), "options.eval_metric", "does not fit multiclass head"),
        (pb.RecommendRequest(task=_head(type="multiclass").task, options=pb.Options(
            trials=False, metric="dice")), "options.metric", "does not fit multiclass head"),
    ],
)  # fmt: skip
def test_invalid_enums_and_durations_name_the_field_the_client_set(server, request_, field, words):
    code, found = rpc_error(server.stub.Recommend, request_, timeout=30)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in found["fields"] and words in found["fields"][field], found
    assert found["reason"] == ("INVALID_OPTIONS" if field.startswith("options.") else "INVALID_TASK")


# ---------------------------------------------------------------------------------------------- trials


@pytest.fixture(scope="module")
def trial_run(server):
    """One small streamed trial run (binary, accuracy: a tuned-threshold recipe among the candidates)."""
    request = build_request({"heads": [{"name": "churn", "type": "binary", "class_histogram": [900, 100],
                                        "metric": "accuracy"}], "n_features": 8},
                            epochs=2, repeats=2, max_rows=300, budget_s=60)  # fmt: skip
    events = list(server.stub.RecommendStream(request, timeout=180))
    return [e.progress for e in events[:-1]], events[-1].result


def test_trial_times_come_as_durations_beside_the_seconds(trial_run):
    progress, result = trial_run
    assert [p.epoch for p in progress] == [1, 2]
    for event in progress:
        assert event.HasField("elapsed") and abs(_seconds(event.elapsed) - event.elapsed_s) < 1e-6
    head = result.heads[0]
    assert head.trial_seconds > 0 and abs(_seconds(head.trial_duration) - head.trial_seconds) < 1e-6
    assert pb.StopReason.Name(head.stop_reason) == f"STOP_REASON_{head.stopped_by.upper()}"
    assert head.evidence_basis == pb.EVIDENCE_SOURCE_SYNTHETIC
    for candidate in head.candidates:
        assert (
            candidate.evidence.eval_metric == pb.METRIC_ACCURACY and candidate.evidence.metric == "accuracy"
        )
    assert _seconds(result.settings.budget) == result.settings.budget_s == 60


def test_tuned_recipes_travel_with_their_values_and_description(trial_run):
    _, result = trial_run
    model = recommendation_from_proto(result)
    sent = [(c.post_hoc, m.post_hoc) for c, m in zip(result.heads[0].candidates, model.heads[0].candidates,
                                                      strict=True) if c.HasField("post_hoc")]  # fmt: skip
    threshold = [(p, recipe) for p, recipe in sent if p.recipe_kind == pb.RECIPE_KIND_THRESHOLD]
    assert threshold, [p.kind for p, _ in sent]
    for message, recipe in sent:
        assert recipe.describe() == message.description
        assert recipe.threshold == (message.threshold if message.HasField("threshold") else None)
        assert recipe.tau == (message.tau if message.HasField("tau") else None)
        assert list(recipe.class_priors or []) == list(message.class_priors)
        assert pb.Activation.Name(message.activation) == f"ACTIVATION_{recipe.activation.upper()}"
    assert any(0 < recipe.threshold < 1 and recipe.ready for _, recipe in threshold)  # tuned by the trials
    assert model.heads[0].verdict == result.heads[0].verdict and model.heads[0].caveats == list(
        result.heads[0].caveats
    )


# ---------------------------------------------------------------------------------------------- the Python client


def _comparable(recommendation) -> dict:
    data = recommendation.model_dump(mode="json")
    data.pop("timings")
    data["settings"].pop("rule_dirs")
    return data


@pytest.mark.parametrize("task", [CALIBRATED, TWO_HEADS], ids=["calibrated", "two_heads"])
def test_the_client_returns_what_the_in_process_api_returns(server, task):
    with AdvisorClient(server.address, timeout=60) as client:
        remote = client.recommend(task, trials=False)
    local = advisor.recommend(task, trials=False)
    assert _comparable(remote) == _comparable(local)
    assert all(h.verdict and h.caveats for h in remote.heads)  # carried, not defaulted
    recipes = [c.post_hoc for h in remote.heads for c in h.candidates if c.post_hoc is not None]
    assert isinstance(recipes[0], Recipe) and any(r.class_priors for r in recipes)


def test_the_client_reads_an_older_server_s_answer_from_the_deprecated_fields_alone():
    local = advisor.recommend(CALIBRATED, trials=False)
    from advisor.service.convert import response_to_proto

    response = response_to_proto(local)
    response.ClearField("stage_durations")
    response.settings.ClearField("budget")
    response.task.task_source = 0
    for head in (*response.task.heads, *response.heads):
        head.head_type = head.eval_metric = 0
    for head in response.heads:
        head.evidence_basis = head.stop_reason = 0
        head.ClearField("trial_duration")
        for candidate in head.candidates:
            if candidate.HasField("post_hoc"):
                candidate.post_hoc.recipe_kind = candidate.post_hoc.activation = 0
    assert _comparable(recommendation_from_proto(response)) == _comparable(local)
    # And a newer server's answer without the deprecated strings reads the same too.
    newer = response_to_proto(local)
    for head in newer.heads:
        head.type = head.metric = head.evidence_source = head.stopped_by = ""
        for candidate in head.candidates:
            if candidate.HasField("post_hoc"):
                candidate.post_hoc.kind = ""
    newer.settings.budget_s = 0
    newer.task.source = ""
    for head in newer.task.heads:
        head.type = head.metric = ""
    assert _comparable(recommendation_from_proto(newer)) == _comparable(local)


@pytest.fixture(scope="module")
def frame():
    import pandas as pd

    return pd.read_csv(ROOT / "client_examples/data/churn.csv").head(400)


def test_the_client_sends_csv_and_arrow_files_by_path(server, frame, tmp_path):
    import pyarrow.feather

    csv, feather, renamed = tmp_path / "churn.csv", tmp_path / "churn.feather", tmp_path / "churn.data"
    frame.to_csv(csv, index=False)
    pyarrow.feather.write_feather(frame, feather)  # Feather v2 = an Arrow IPC file (magic ARROW1)
    renamed.write_bytes(feather.read_bytes())  # no telling suffix: the magic bytes say Arrow
    kinds = {path.name: build_request(path, target="churned").dataset.WhichOneof("content")
             for path in (csv, feather, renamed)}  # fmt: skip
    assert kinds == {"churn.csv": "csv", "churn.feather": "arrow_ipc", "churn.data": "arrow_ipc"}
    local = advisor.recommend(str(csv), target="churned", trials=False)
    with AdvisorClient(server.address, timeout=60) as client:
        for path in (csv, str(csv), feather, str(renamed)):
            remote = client.recommend(path, target="churned", trials=False)
            assert remote.task.source == "data" and remote.task.n_samples == local.task.n_samples == 400
            assert remote.heads[0].candidates[0].spec == local.heads[0].candidates[0].spec, path


def test_the_client_refuses_missing_unsupported_and_oversized_files_naming_data(server, frame, tmp_path):
    with pytest.raises(DataError) as caught:
        build_request(tmp_path / "nowhere.csv")
    assert isinstance(caught.value, ValueError) and caught.value.violations[0].field == "data"
    assert "no such file" in str(caught.value)
    parquet = tmp_path / "churn.parquet"
    frame.to_parquet(parquet)
    disguised = tmp_path / "parquet.csv"
    disguised.write_bytes(parquet.read_bytes())
    for path, words in ((parquet, "a Parquet file"), (disguised, "a Parquet file"),
                        (tmp_path / "book.xlsx", "an Excel workbook")):  # fmt: skip
        path.touch()
        with pytest.raises(DataError) as caught:
            build_request(path, target="churned")
        message = caught.value.violations[0]
        assert message.field == "data" and words in message.description
        assert ".arrow" in message.description and "CSV" in message.description  # what is allowed
    big = tmp_path / "big.csv"
    big.write_bytes(b"a,y\n" + b"1,0\n" * (DATASET_LIMIT_BYTES // 4))  # just over the limit
    with pytest.raises(DataError) as caught:
        build_request(big, target="y")
    assert f"at most {DATASET_LIMIT_BYTES:,} bytes" in caught.value.violations[0].description
    # The client's limit is the server's default one: unchecked, the same file is refused by the server.
    unchecked = AdvisorClient(server.address, timeout=60, dataset_limit_bytes=None)
    with unchecked as client, pytest.raises(ServiceError) as refused:
        client.recommend(big, target="y", trials=False)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.violations[0].field == "dataset.csv"


def test_duration_conversions_round_trip_and_stay_in_range():
    from advisor.service.convert import duration

    for seconds in (0.0, 0.1, 12.5, 299.999999999, -1.5):
        assert abs(_seconds(duration(seconds)) - seconds) < 1e-9
    assert duration(float("inf")) is None and duration(1e300) is None  # beyond a Duration: seconds only
