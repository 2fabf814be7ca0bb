"""Images, masks and audio clips over gRPC (Dataset.npz), and what the proto carries of their profiles and of
multi-head joint trials: a real server process (tests.service_helpers.ServerProcess), tiny data made here."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import advisor
from advisor.client import AdvisorClient, DataError, build_request
from advisor.service.convert import (
    recommendation_from_proto,
    response_to_proto,
    task_from_proto,
    task_to_proto,
)
from advisor.service.npz import pack
from lossadvisor.v1 import advisor_pb2 as pb
from tests.service_helpers import ServerProcess, rpc_error

ROOT = Path(__file__).resolve().parents[1]
RATE = 8_000
QUICK = {"epochs": 2, "repeats": 2, "cache": False}
LIMIT_BYTES = 256 * 1024  # the server's --dataset-limit-mb below


def _segmentation() -> tuple[np.ndarray, np.ndarray]:
    """24 grey 16 x 16 images, each with a 4 x 4 object (the first 6 masks empty)."""
    rng = np.random.default_rng(0)
    masks = np.zeros((24, 16, 16), dtype=np.uint8)
    for mask, (row, column) in zip(masks[6:], rng.integers(1, 11, (18, 2)), strict=True):
        mask[row : row + 4, column : column + 4] = 1
    images = (masks[:, None] * 160 + rng.integers(0, 90, (24, 1, 16, 16))).astype(np.uint8)
    return images, masks


def _audio() -> tuple[np.ndarray, np.ndarray]:
    """16 clips of 0.2 s at 8 kHz: tones (the targets) in white noise (the inputs)."""
    rng = np.random.default_rng(0)
    t = np.arange(RATE // 5) / RATE
    clean = (0.5 * np.sin(2 * np.pi * rng.uniform(200, 2000, (16, 1)) * t)).astype(np.float32)
    return (clean + 0.2 * rng.normal(size=clean.shape)).astype(np.float32), clean


IMAGES, MASKS = _segmentation()
NOISY, CLEAN = _audio()


@pytest.fixture(scope="module")
def server():
    process = ServerProcess("--workers", "1", "--dataset-limit-mb", str(LIMIT_BYTES / 2**20))
    yield process
    assert process.stop() == 0


def _ranking(recommendation: advisor.Recommendation) -> list[tuple[str, float | None]]:
    return [(c.name, c.evidence and c.evidence.mean) for c in recommendation.heads[0].candidates]


def _heads(task) -> list[dict]:
    return [head.model_dump(mode="json") for head in task.heads]


# ---------------------------------------------------------------------------------------------- the proto


@pytest.mark.parametrize(
    "data", [((IMAGES, MASKS), {}), ((NOISY, CLEAN), {"sample_rate": RATE})], ids=["segmentation", "audio"]
)
def test_a_profiled_task_round_trips_through_the_proto_both_ways(data):
    arrays, extra = data
    task = advisor.profile(arrays, **extra)
    head = task.heads[0]
    assert head.absent_shares or head.input_snr_db is not None  # the statistics the proto lacked before
    message = task_to_proto(task)
    # Model -> proto -> model: every field comes back (a request's task is a description, without notes).
    assert task_from_proto(message) == task.model_copy(update={"source": "description", "notes": []})
    # Proto -> model -> proto: the same message, up to those output-only fields.
    again = task_to_proto(task_from_proto(message))
    expected = pb.TaskDescription()
    expected.CopyFrom(message)
    expected.ClearField("notes")
    expected.source, expected.task_source = "description", pb.TASK_SOURCE_DESCRIPTION
    assert again == expected
    if head.type == "audio":
        assert message.heads[0].median_duration.ToNanoseconds() == 200_000_000  # a Duration, as times are


def test_a_request_s_median_duration_must_be_a_valid_duration():
    head = pb.Head(head_type=pb.HEAD_TYPE_AUDIO, sample_rate=RATE)
    head.median_duration.seconds, head.median_duration.nanos = 1, -5
    with pytest.raises(advisor.AdvisorError) as caught:
        task_from_proto(pb.TaskDescription(heads=[head]))
    assert caught.value.violations[0].field == "task.heads.0.median_duration"
    head.median_duration.nanos = 0
    head.median_duration.seconds = -1
    with pytest.raises(advisor.AdvisorError) as caught:
        task_from_proto(pb.TaskDescription(heads=[head]))
    assert caught.value.violations[0].field == "task.heads.0.median_duration"  # the core's field, renamed


def _comparable(recommendation: advisor.Recommendation) -> dict:
    """A recommendation without what a response does not carry exactly: the server's rule folders, and times
    (Durations hold nanoseconds)."""
    data = recommendation.model_dump(mode="json")
    data.pop("timings")
    data["settings"].pop("rule_dirs")
    for part in (*data["heads"], data["multi_task_trials"]):
        part["trial_seconds"] = round(part["trial_seconds"], 6)
    return data


def test_multi_head_joint_trial_evidence_round_trips_through_the_response():
    from tests.test_multitask_trials import _frame  # a binary and a regression target: joint trials run

    local = advisor.recommend(_frame(), target=["churn", "price"], **QUICK)
    assert local.multi_task_trials is not None, local.notes
    assert local.multi_task[0].summary
    assert local.multi_task[0].evidence.per_head
    response = response_to_proto(local)
    trials = response.multi_task_trials
    assert [h.head for h in trials.heads] == ["churn", "price"] and trials.stop_reason != 0
    metric = local.multi_task_trials.heads[0].metric
    assert trials.heads[0].eval_metric == pb.Metric.Value(f"METRIC_{metric.upper()}")
    assert len(response.multi_task[0].evidence.per_head) == 2 and response.multi_task[0].summary
    assert _comparable(recommendation_from_proto(response)) == _comparable(local)


# ---------------------------------------------------------------------------------------------- Dataset.npz


@pytest.fixture(scope="module")
def local_segmentation() -> advisor.Recommendation:
    return advisor.recommend((IMAGES, MASKS), **QUICK)


def test_segmentation_arrays_over_recommend_rank_as_in_process(server, local_segmentation):
    dataset = pb.Dataset(npz=pack({"images": IMAGES, "masks": MASKS}))
    response = server.stub.Recommend(
        pb.RecommendRequest(dataset=dataset, options=pb.Options(**QUICK)), timeout=180
    )
    head = response.heads[0]
    assert head.evidence_basis == pb.EVIDENCE_SOURCE_DATA and head.head_type == pb.HEAD_TYPE_SEGMENTATION
    assert response.task.task_source == pb.TASK_SOURCE_DATA
    assert list(response.task.heads[0].absent_shares) == [0.25]
    remote = recommendation_from_proto(response)
    assert _ranking(remote) == _ranking(local_segmentation)
    assert _heads(remote.task) == _heads(local_segmentation.task)


def test_overlapping_channel_masks_over_recommend_keep_their_channels_and_per_class_values(server):
    from tests.test_segmentation_multilabel import _overlapping  # (24, 2, 16, 16) masks that overlap

    images, masks = _overlapping()
    dataset = pb.Dataset(npz=pack({"images": images, "masks": masks}))
    response = server.stub.Recommend(
        pb.RecommendRequest(dataset=dataset, options=pb.Options(**QUICK)), timeout=180
    )
    assert response.task.heads[0].overlapping_classes and response.task.heads[0].num_classes == 2
    local = advisor.recommend((images, masks), **QUICK)
    remote = recommendation_from_proto(response)
    assert _ranking(remote) == _ranking(local)
    assert [c.evidence.per_class for c in remote.heads[0].candidates] == [
        c.evidence.per_class for c in local.heads[0].candidates
    ]


def test_audio_arrays_over_recommend_stream_and_operations(server):
    local = advisor.recommend((NOISY, CLEAN), sample_rate=RATE, **QUICK)
    request = pb.RecommendRequest(
        dataset=pb.Dataset(npz=pack({"inputs": NOISY, "targets": CLEAN}), sample_rate=RATE),
        options=pb.Options(**QUICK),
    )
    remote = recommendation_from_proto(server.stub.Recommend(request, timeout=180))
    assert remote.heads[0].evidence_source == "data" and remote.task.heads[0].sample_rate == RATE
    assert _ranking(remote) == _ranking(local) and _heads(remote.task) == _heads(local.task)
    # The stream and a long-running operation take the same dataset (rules only: the reading is what differs).
    request.options.trials = False
    events = list(server.stub.RecommendStream(request, timeout=120))
    assert recommendation_from_proto(events[-1].result).task.heads == local.task.heads
    with AdvisorClient(server.address, timeout=120) as client:
        name = client.start_recommend((NOISY, CLEAN), sample_rate=RATE, trials=False)
        done = client.wait_operation(name, timeout=120)
    assert done.state == "succeeded" and done.recommendation.task.heads == local.task.heads


class _Opens:
    """Unpickling this object opens (creates) a file: proof that a server unpickled client data."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def _raw_npz(save=np.savez, **arrays) -> bytes:
    buffer = io.BytesIO()
    save(buffer, **arrays)
    return buffer.getvalue()


def _invalid_cases(marker: Path) -> list[tuple[pb.Dataset, str, str, str]]:
    """(dataset, field, words in the description, ErrorInfo reason)."""
    images, masks = IMAGES, MASKS
    pickled = np.array([_Opens(marker)] * 24, dtype=object)
    noise = np.random.default_rng(1).normal(size=(24, 1, 64, 64))  # does not compress: over the limit
    return [
        (pb.Dataset(npz=pack({"x": images, "y": masks})), "dataset.npz", "'x', 'y'; allowed: exactly images and masks",
         "INVALID_DATASET"),
        (pb.Dataset(npz=pack({"images": images, "masks": masks, "extra": masks})), "dataset.npz",
         "'extra', 'images', 'masks'", "INVALID_DATASET"),
        (pb.Dataset(npz=_raw_npz(images=pickled, masks=masks)), "dataset.npz", "never unpickles", "INVALID_DATASET"),
        (pb.Dataset(npz=pack({"images": images, "masks": masks[:, :, :15]})), "dataset.npz", "do not fit",
         "INVALID_DATASET"),
        (pb.Dataset(npz=pack({"images": images, "masks": masks[:20]})), "dataset.npz", "24 images but 20 masks",
         "INVALID_DATASET"),
        (pb.Dataset(npz=pack({"inputs": NOISY, "targets": CLEAN})), "dataset.sample_rate", "required",
         "INVALID_DATASET"),
        (pb.Dataset(npz=pack({"inputs": NOISY, "targets": CLEAN}), sample_rate=0), "dataset.sample_rate",
         "from 1 to 768,000", "INVALID_DATASET"),
        (pb.Dataset(npz=pack({"images": images, "masks": masks}), sample_rate=RATE), "dataset.sample_rate",
         "not to images and masks", "INVALID_DATASET"),
        (pb.Dataset(csv=b"x,y\n1,0\n2,1\n", sample_rate=RATE), "dataset.sample_rate", "not to csv",
         "INVALID_DATASET"),
        (pb.Dataset(npz=pack({"inputs": (NOISY * 32767).astype(np.int16), "targets": CLEAN}), sample_rate=RATE),
         "dataset.npz", "floating-point", "INVALID_DATASET"),
        (pb.Dataset(npz=b"PK\x03\x04 not really a zip"), "dataset.npz", "not a readable .npz", "INVALID_DATASET"),
        (pb.Dataset(npz=_raw_npz(images=noise, masks=np.zeros((24, 64, 64), np.uint8))), "dataset.npz",
         f"at most {LIMIT_BYTES:,} are accepted", "DATASET_TOO_LARGE"),
        # Deflated zeros: a few kB that would take 8 MB in the worker.
        (pb.Dataset(npz=pack({"images": np.zeros((2000, 1, 32, 32), np.float32),
                              "masks": np.zeros((2000, 32, 32), np.uint8)})), "dataset.npz", "uncompressed",
         "DATASET_TOO_LARGE"),
    ]  # fmt: skip


def test_invalid_npz_datasets_are_invalid_argument_naming_the_field(server, tmp_path):
    marker = tmp_path / "unpickled"
    cases = _invalid_cases(marker)
    for dataset, field, words, reason in cases:
        request = pb.RecommendRequest(dataset=dataset, options=pb.Options(**QUICK))
        for method in (server.stub.Recommend, server.stub.StartRecommend):  # refused before any work starts
            code, found = rpc_error(method, request, timeout=60)
            assert code == grpc.StatusCode.INVALID_ARGUMENT, (field, words)
            assert found["reason"] == reason and words in found["fields"].get(field, ""), found
    assert not marker.exists()


_VALID_NPZ = (_raw_npz(images=IMAGES[:4], masks=MASKS[:4]), pack({"inputs": NOISY[:2], "targets": CLEAN[:2]}))


@settings(max_examples=300, deadline=None)
@given(
    archive=st.sampled_from(_VALID_NPZ),
    changes=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4
    ),
)
def test_damaged_archives_are_refused_with_the_field_never_an_unexpected_error(archive, changes):
    """What the servicer runs on the event loop, and the worker after it, on an archive with bytes changed."""
    from advisor.service import npz

    damaged = bytearray(archive)
    for where, value in changes:
        damaged[int(where * len(damaged))] = value
    try:
        found = npz.headers(bytes(damaged))
        npz.expanded_bytes(found)
        npz.load(bytes(damaged), npz.kind_of(found, RATE if "inputs" in found else None))
    except advisor.AdvisorError as exc:  # the profiler's ProfileError is one
        assert exc.violations and all(v.field for v in exc.violations)


def test_a_profiling_error_in_the_worker_names_the_npz(server):
    masks = MASKS.copy()
    masks[0, 0, 0] = 77  # the headers are fine; the values are no class indices
    request = pb.RecommendRequest(dataset=pb.Dataset(npz=pack({"images": IMAGES, "masks": masks})))
    code, found = rpc_error(server.stub.Recommend, request, timeout=60)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and found["reason"] == "INVALID_DATASET"
    assert "masks hold the values '1', '77'" in found["fields"]["dataset.npz"]


# ---------------------------------------------------------------------------------------------- the client, the CLI


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """The segmentation arrays as PNG folders, and the audio arrays as WAV folders."""
    import soundfile
    from PIL import Image

    root = tmp_path_factory.mktemp("data")
    for name in ("images", "masks", "noisy", "clean"):
        (root / name).mkdir()
    for index, (image, mask) in enumerate(zip(IMAGES, MASKS, strict=True)):
        Image.fromarray(image[0]).save(root / "images" / f"case{index}.png")
        Image.fromarray(mask).save(root / "masks" / f"case{index}.png")
    for index, (noisy, clean) in enumerate(zip(NOISY, CLEAN, strict=True)):
        soundfile.write(root / "noisy" / f"take{index}.wav", noisy, RATE)
        soundfile.write(root / "clean" / f"take{index}.wav", clean, RATE)
    np.savez(root / "cells.npz", images=IMAGES, masks=MASKS)
    return {name: root / name for name in ("images", "masks", "noisy", "clean", "cells.npz")}


def test_the_client_sends_an_npz_file_and_folders_read_as_in_process(server, folders):
    pairs = {
        "npz": folders["cells.npz"],
        "segmentation": (folders["images"], folders["masks"]),
        "audio": (str(folders["noisy"]), str(folders["clean"])),
    }
    assert build_request(pairs["npz"]).dataset.npz == folders["cells.npz"].read_bytes()  # sent as it is
    audio = build_request(pairs["audio"]).dataset
    assert audio.WhichOneof("content") == "npz" and audio.sample_rate == RATE  # the files' rate
    with AdvisorClient(server.address, timeout=120) as client:
        for name, data in pairs.items():
            remote = client.recommend(data, trials=False)
            local = advisor.profile(data)
            assert remote.task.source == "data" and _heads(remote.task) == _heads(local), name


def test_the_client_refuses_folders_it_cannot_send_as_arrays(folders, tmp_path):
    from PIL import Image

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for index, side in enumerate((16, 16, 20)):
        Image.fromarray(np.full((side, side), 9, np.uint8)).save(images / f"{index}.png")
        Image.fromarray(np.eye(side, dtype=np.uint8)).save(masks / f"{index}.png")
    with pytest.raises(DataError) as caught:
        build_request((images, masks))
    assert caught.value.violations[0].field == "data" and "2 sizes (16x16, 20x20" in str(caught.value)
    with pytest.raises(DataError) as caught:
        build_request(folders["images"])  # a folder of images without its masks: the profiler's own message
    assert caught.value.violations[0].field == "masks"
    with pytest.raises(DataError) as caught:
        build_request((NOISY, CLEAN), task="audio")
    assert caught.value.violations[0].field == "sample_rate"


def test_cli_recommend_images_and_masks_through_the_server(server, folders):
    command = [sys.executable, "-m", "advisor", "recommend", str(folders["images"]), "--masks", str(folders["masks"]),
               "--server", server.address, "--no-trials", "--json"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert done.returncode == 0, done.stderr
    remote = json.loads(done.stdout)
    assert remote["task"]["source"] == "data"
    assert remote["task"]["heads"] == _heads(advisor.profile((folders["images"], folders["masks"])))
