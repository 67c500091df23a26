"""How the classifier picks its inference path: measured, never assumed; cached; safe without a writable cache."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from benchmarks import masked_cpu
from classifiers import onnx_model
from classifiers.cpu import capability_from_flags
from classifiers.paths import PATHS, choose, machine_key, measure

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

COMPLAINT = "@acme worst service ever. my order never arrived, nobody answers and I want a refund now"


def test_a_slow_path_is_never_chosen():
    # What the issue measured on an AVX2-only CPU: the old int8 kernel at 5/s, fp32 at 138/s.
    assert choose({"onnxruntime-int8": 5.0, "onnxruntime-fp32": 120.0, "torch-fp32": 138.0}) == "torch-fp32"
    assert choose({"onnxruntime-int8": 950.0, "onnxruntime-fp32": 300.0, "torch-fp32": 140.0}) == "onnxruntime-int8"
    assert choose({"onnxruntime-int8": 200.0, "onnxruntime-fp32": 200.0, "torch-fp32": 200.0}) == PATHS[0]
    with pytest.raises(ValueError):
        choose({})


class FakeRunner:
    """Costs `seconds_per_row` of a fake clock per row; the first `slow_calls` calls cost 100 times more
    (a busy neighbour), which the best-of-rounds measurement must see through."""

    def __init__(self, clock: list[float], seconds_per_row: float, slow_calls: int = 0) -> None:
        self.clock, self.cost, self.slow_calls, self.calls = clock, seconds_per_row, slow_calls, 0

    def logits(self, rows):
        self.calls += 1
        self.clock[0] += len(rows) * self.cost * (100 if self.calls <= self.slow_calls else 1)
        return [], [], []


def test_measurement_picks_the_fastest_path_despite_a_noisy_round():
    clock = [0.0]
    runners = {"onnxruntime-int8": FakeRunner(clock, 0.001, slow_calls=2), "torch-fp32": FakeRunner(clock, 0.004)}
    rates = measure(runners, [[101, 102]] * 32, clock=lambda: clock[0])
    assert rates == {"onnxruntime-int8": pytest.approx(1000.0), "torch-fp32": pytest.approx(250.0)}
    assert choose(rates) == "onnxruntime-int8"


def test_measurement_never_keeps_an_int8_path_that_is_slow_on_this_cpu():
    """An AVX2-only CPU where int8 kernels crawl (the issue's 5/s): measured, the fp32 paths win."""
    clock = [0.0]
    runners = {"onnxruntime-int8": FakeRunner(clock, 0.2), "onnxruntime-fp32": FakeRunner(clock, 0.008),
               "torch-fp32": FakeRunner(clock, 0.0072)}
    rates = measure(runners, [[101, 102]] * 32, clock=lambda: clock[0])
    assert choose(rates) == "torch-fp32" and rates["onnxruntime-int8"] == pytest.approx(5.0)


def test_a_model_without_its_heads_is_refused_naming_the_file(tmp_path):
    from safetensors.numpy import save_file

    from classifiers.onnx_graph import build

    save_file({"sentiment_head.weight": np.zeros((3, 384), np.float16)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"model\.safetensors lacks trained tensors: \['sentiment_head\.bias'"):
        build(tmp_path)


@pytest.mark.slow
def test_warm_fills_the_cache_so_the_next_load_neither_builds_nor_measures(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from classifiers.cli import app
    from classifiers.tokens import MODEL_DIR
    from classifiers.transformer import TransformerClassifier

    monkeypatch.setenv("MENTIONWATCH_CACHE_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["warm", "--threads", "2"])
    assert result.exit_code == 0, result.output
    assert "classifier minilm" in result.output and " on " in result.output and "torch-fp32" in result.output
    entry = onnx_model.entry_dir(onnx_model.artifact_key(MODEL_DIR))
    assert (entry / f"choice-{machine_key(2)}.json").is_file()
    monkeypatch.setattr("classifiers.paths._prepare_in_child", lambda *_: pytest.fail("prepared again"))
    monkeypatch.setattr("classifiers.onnx_model.build_graphs", lambda *_: pytest.fail("built again"))
    loaded = TransformerClassifier(threads=2)
    assert loaded.classify([COMPLAINT])[0].intent == "complaint"


def test_cpu_capability_names():
    assert capability_from_flags("x86_64", {"avx2", "fma"}) == "AVX2"
    assert capability_from_flags("x86_64", {"avx2", "avx512f", "avx512bw"}) == "AVX512"
    assert capability_from_flags("x86_64", {"avx2", "avx512f", "avx512bw", "avx512_vnni", "amx_int8"}) == \
        "AVX512_VNNI+AMX"
    assert capability_from_flags("x86_64", {"avx2", "avx_vnni"}) == "AVX2_VNNI"
    assert capability_from_flags("aarch64", {"fp", "asimd", "asimddp"}) == "ARM64+DOTPROD"
    assert capability_from_flags("aarch64", {"asimd", "asimddp", "i8mm"}) == "ARM64+DOTPROD+I8MM"


def test_machine_key_separates_torch_overrides(monkeypatch):
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    native = machine_key(2)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert machine_key(2) != native and machine_key(2) != machine_key(4)


@pytest.fixture(scope="module")
def shipped():
    """The default classifier, which builds (or finds) the cached graphs of the shipped model."""
    from classifiers.transformer import TransformerClassifier

    return TransformerClassifier(threads=2)


@pytest.mark.slow
def test_the_default_knows_its_path_and_runtime(shipped):
    assert shipped.path in PATHS
    assert shipped.runtime.split(" on ")[0] in ("onnxruntime int8", "onnxruntime fp32", "torch fp32")
    assert " on " in shipped.runtime


@pytest.mark.slow
@pytest.mark.parametrize("cached", ["onnxruntime-fp32", "torch-fp32"])
def test_a_cached_choice_is_used_without_measuring_again(shipped, cached, tmp_path, monkeypatch):
    """A choice cached for this machine decides the path at the next load, whatever it says."""
    from classifiers.tokens import MODEL_DIR
    from classifiers.transformer import TransformerClassifier

    key = onnx_model.artifact_key(MODEL_DIR)
    source = onnx_model.cached_graphs(key)
    assert source is not None and source.entry is not None
    monkeypatch.setenv("MENTIONWATCH_CACHE_DIR", str(tmp_path))
    entry = onnx_model.entry_dir(key)
    entry.mkdir(parents=True)
    for name in onnx_model.GRAPHS.values():
        (entry / name).symlink_to(source.entry / name)
    rates = {path: 3.0 if path == cached else 1.0 for path in PATHS}
    (entry / f"choice-{machine_key(2)}.json").write_text(json.dumps({"path": cached, "rates": rates}))
    loaded = TransformerClassifier(threads=2)
    assert (loaded.path, loaded.rates) == (cached, rates)
    assert loaded.runtime.startswith(cached.replace("-", " ") + " on ")
    assert loaded.classify([COMPLAINT])[0].intent == "complaint"


@pytest.mark.slow
def test_an_unwritable_cache_builds_in_memory(shipped, tmp_path, monkeypatch):
    from classifiers.transformer import TransformerClassifier

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("MENTIONWATCH_CACHE_DIR", str(blocker / "cache"))
    built = TransformerClassifier(path="onnxruntime-int8", threads=2)
    assert not (blocker / "cache").exists()
    texts = [COMPLAINT, "love the new dark mode", "is the store open on sunday"]
    assert built.classify(texts) == shipped_int8(shipped).classify(texts)


def shipped_int8(shipped):
    from classifiers.transformer import TransformerClassifier

    return shipped if shipped.path == "onnxruntime-int8" else TransformerClassifier(path="onnxruntime-int8")


def test_an_unknown_path_is_refused_by_name():
    from classifiers.transformer import TransformerClassifier

    with pytest.raises(ValueError, match="unknown inference path 'gpu'.*onnxruntime-int8"):
        TransformerClassifier(path="gpu")


@pytest.mark.slow
def test_the_exported_graph_computes_what_the_torch_model_computes():
    """The fp32 graph is the shipped model, exported: its scores match the unquantised PyTorch path."""
    from classifiers.base import INTENTS, SENTIMENTS
    from classifiers.transformer import TransformerClassifier

    texts = [COMPLAINT, "love the new dark mode", "is the store open on sunday", "ok", "word " * 400]
    exported = TransformerClassifier(path="onnxruntime-fp32").classify(texts)
    reference = TransformerClassifier(quantize=False).classify(texts)
    for ours, theirs in zip(exported, reference):
        for label in SENTIMENTS:
            assert ours.sentiment_scores[label] == pytest.approx(theirs.sentiment_scores[label], abs=1e-4)
        for label in INTENTS:
            assert ours.intent_scores[label] == pytest.approx(theirs.intent_scores[label], abs=1e-4)
        assert ours.needs_reply_score == pytest.approx(theirs.needs_reply_score, abs=1e-4)


def _logits(model_dir, path, texts):
    from classifiers.data import normalise
    from classifiers.paths import load_runner
    from classifiers.tokens import token_ids

    runner, tokenizer, _ = load_runner(model_dir, 2, path)
    sentiment, intent, _ = runner.logits([token_ids(tokenizer, normalise(text), 128) for text in texts])
    return np.array(sentiment), np.array(intent)


@pytest.mark.slow
def test_calibrated_smoothing_brings_the_int8_path_closer_to_the_unquantised_model(tmp_path, monkeypatch):
    """The shipped activation ranges change no fp32 number but cut int8's distance from fp32 on unseen posts."""
    import shutil

    from classifiers import data
    from classifiers.tokens import MODEL_DIR, RANGES_FILE

    monkeypatch.setenv("MENTIONWATCH_CACHE_DIR", str(tmp_path / "cache"))
    assert (MODEL_DIR / RANGES_FILE).is_file()
    plain = tmp_path / "plain"
    shutil.copytree(MODEL_DIR, plain)
    (plain / RANGES_FILE).unlink()
    texts = [example.text for example in data.own_intent("validation")][:150]
    reference = np.concatenate(_logits(MODEL_DIR, "torch-fp32", texts), axis=1)
    smoothed_fp32 = np.concatenate(_logits(MODEL_DIR, "onnxruntime-fp32", texts), axis=1)
    assert np.abs(smoothed_fp32 - reference).max() < 1e-3
    smoothed = np.abs(np.concatenate(_logits(MODEL_DIR, "onnxruntime-int8", texts), axis=1) - reference).mean()
    unsmoothed = np.abs(np.concatenate(_logits(plain, "onnxruntime-int8", texts), axis=1) - reference).mean()
    assert smoothed < 0.85 * unsmoothed


def test_calibration_writes_a_range_per_quantised_node_and_rebuilds_the_graphs(tmp_path):
    import shutil

    from safetensors.numpy import load_file

    from classifiers.tokens import MODEL_DIR, RANGES_FILE

    model = tmp_path / "model"
    shutil.copytree(MODEL_DIR, model)
    before = onnx_model.artifact_key(model)
    onnx_model.calibrate(model, ["@acme my parcel never came", "love it", "how do I export my data?"])
    ranges = load_file(str(model / RANGES_FILE))
    assert sorted(ranges) == sorted(f"l{i}_{part}" for i in range(6) for part in ("attention", "attn_out", "inter", "out"))
    assert ranges["l0_out"].shape == (1536,) and (ranges["l0_out"] > 0).all()
    assert onnx_model.artifact_key(model) != before


@pytest.mark.slow
@pytest.mark.skipif(bool(masked_cpu.unavailable()), reason="needs x86-64 cpuid faulting and a C compiler")
def test_an_avx2_only_cpu_gives_the_int8_path_the_labels_this_cpu_gives(tmp_path):
    """MLAS runs other int8 kernels on an AVX2-only CPU (uint8 x int8 pairs that saturate at 16 bits, where VNNI
    does not); the 7-bit weights keep those products exact, so a user's labels must not depend on their CPU."""
    import subprocess
    import sys
    from pathlib import Path

    from benchmarks.emulated_cpu import agreement

    root = Path(__file__).resolve().parent.parent
    environment = {**os.environ, "MENTIONWATCH_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, str(root / "benchmarks" / "emulated_cpu.py"), "--posts", "300", "--child"]
    subprocess.run([*command, str(tmp_path / "here.json")], check=True, env=environment)
    subprocess.run([*command, str(tmp_path / "avx2.json")], check=True,
                   env=masked_cpu.masked_environment("avx2", masked_cpu.build_shim(tmp_path), environment))
    here, avx2 = (json.loads((tmp_path / name).read_text()) for name in ("here.json", "avx2.json"))
    assert avx2["capability"] == "AVX2"
    for head, (same, gap) in agreement(here, avx2).items():
        assert same >= 0.99 * len(here[head]), head
        if head != "reply":
            assert gap < 0.5, head
