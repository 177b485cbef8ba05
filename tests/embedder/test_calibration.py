"""EMBEDDER_BACKEND=auto on CPU: the first start measures the exact backends and keeps the
faster; a later start on the same CPU reuses the choice without measuring; another CPU (or an
unreadable record) measures again. Real model, real ONNX export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.embedder.backends.calibration import METHOD, RECORD, choose
from shared.settings import EmbedderSettings
from tests.conftest import settings

pytestmark = pytest.mark.model
CPU = "Test CPU (avx2)"


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")  # one export for the module


def record_of(config: EmbedderSettings, cpu: str = CPU) -> dict[str, object]:
    """The measurement kept for ``cpu``."""
    [path] = Path(str(config.onnx_dir)).glob(f"*/{RECORD}")
    [record] = [r for r in json.loads(path.read_text())["measurements"]
                if r["measured_on"]["cpu"] == cpu]
    return dict(record)


def test_the_first_start_measures_and_a_later_one_reuses_the_choice(onnx_dir: Path) -> None:
    config = settings(onnx_dir=str(onnx_dir))
    first = choose(config, cpu=CPU)
    record = record_of(config)
    speeds = record["texts_per_s"]
    assert isinstance(speeds, dict) and set(speeds) == {"onnx", "torch"}
    assert record["choice"] == max(speeds, key=lambda name: speeds[name]) == first.info.backend
    assert first.info.chosen_by.startswith(f"measured at this start on {CPU}: ")
    again = choose(config, cpu=CPU)
    assert again.info.backend == first.info.backend
    assert "kept in" in again.info.chosen_by
    assert record_of(config) == record  # not measured again


def test_a_kept_choice_is_what_serves(onnx_dir: Path) -> None:
    config = settings(onnx_dir=str(onnx_dir))
    choose(config, cpu=CPU)
    [path] = onnx_dir.glob(f"*/{RECORD}")
    kept = json.loads(path.read_text())["measurements"]
    for choice in ("torch", "onnx"):
        path.write_text(json.dumps({"measurements": [r | {"choice": choice} for r in kept]}))
        assert choose(config, cpu=CPU).info.backend == choice


def test_another_cpu_measures_again_and_both_are_kept(onnx_dir: Path) -> None:
    config = settings(onnx_dir=str(onnx_dir))
    choose(config, cpu=CPU)
    mine = record_of(config)
    other = choose(config, cpu="Other CPU (avx2, avx512f)")
    assert other.info.chosen_by.startswith("measured at this start on Other CPU")
    assert record_of(config, "Other CPU (avx2, avx512f)")["choice"] == other.info.backend
    assert record_of(config) == mine  # still kept: this CPU is not measured again
    assert "kept in" in choose(config, cpu=CPU).info.chosen_by


def test_an_unreadable_record_measures_again(onnx_dir: Path) -> None:
    config = settings(onnx_dir=str(onnx_dir))
    choose(config, cpu=CPU)
    [path] = onnx_dir.glob(f"*/{RECORD}")
    path.write_text("{not json")
    assert choose(config, cpu=CPU).info.chosen_by.startswith("measured at this start")
    assert record_of(config)["choice"] in ("onnx", "torch")


def test_a_record_measured_another_way_measures_again(onnx_dir: Path) -> None:
    config = settings(onnx_dir=str(onnx_dir))
    choose(config, cpu=CPU)
    [path] = onnx_dir.glob(f"*/{RECORD}")
    kept = json.loads(path.read_text())["measurements"]
    older = [r | {"measured_on": {k: v for k, v in r["measured_on"].items() if k != "method"}}
             for r in kept]  # as a release that timed batches of 16 only kept it
    path.write_text(json.dumps({"measurements": older}))
    assert choose(config, cpu=CPU).info.chosen_by.startswith("measured at this start")
    methods = [r["measured_on"].get("method")
               for r in json.loads(path.read_text())["measurements"]]
    assert methods == [None, METHOD]  # the older record stays until KEPT pushes it out
