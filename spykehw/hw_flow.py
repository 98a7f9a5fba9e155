"""The hardware stage of the main job (``spykehw run``): Verilog of both blocks and an end-to-end
co-simulation of a few test images.

:func:`run_hardware_stage` (called by :mod:`spykehw.flow` after the integer model):

1. **Verilog**: the conv core (Conv1 with the run's options and formats) and the classifier
   (the run's quantized classifier's shape, :data:`LANES` lanes, ``W2`` through the memory
   port) into ``hardware/`` of the run folder (``.v``, ``.json`` port description, ``.il``),
   each linted with Verilator when it is available.
2. **Co-simulation**: the first :data:`IMAGES` test images, encoded by the golden integer
   encoder, go through the conv core RTL (spikes and Pool1 features compared with the golden
   conv layer), and the feature words it emits, in its order, through the classifier RTL
   (hidden bits, logits, class and softmax words compared with the golden ``forward_int``), on
   Verilator (Icarus when Verilator is missing): :func:`spykehw.sim.classifier.cosim.run_chain`.
   The report gives the agreement with the golden model, the accuracy on those images, the
   cycles of each block and the time taken.

Simulation builds are cached across runs (keyed by the Verilog), so only the first run on a
machine pays for compiling them. Nothing here decides anything the models compute: it wires the
RTL generators, the vector generators and the co-simulation together and reports.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .golden.state import load_state
from .hardware import generate_network
from .sim.framework.toolchain import find_verilator, missing_reason

__all__ = ["IMAGES", "LANES", "CONV_PARALLELISM", "run_hardware_stage"]

IMAGES = 8
LANES = 64
"""Classifier lanes (hidden accumulators per cycle), at most the hidden units."""
CONV_PARALLELISM = 30
"""Conv core maps per cycle: all 30 of Conv1 (the fastest simulation)."""


def _simulator() -> str | None:
    for name in ("verilator", "icarus"):
        if not missing_reason(name):
            return name
    return None


def run_hardware_stage(cfg, ints, ds, folder, report) -> None:
    """Generate, lint and co-simulate (see the module docstring); results under ``hardware``;
    skipped, with a line saying why, without the ``hw`` extra."""
    try:  # hw extra: Amaranth, cocotb (optional; the models run without them)
        from .rtl.classifier import ClassifierConfig
        from .rtl.conv_config import ConvCoreConfig
        from .sim.classifier.cosim import build_chain, run_chain
        from .sim.classifier.vector_gen import chain_vectors, write_vector_set
        from .sim.conv.vector_gen import write_vector_set as write_conv_vectors
        from .sim.framework.lint import lint
    except ImportError as e:
        report.say(f"[hardware] skipped: {e}")
        return

    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    result: dict[str, Any] = {}
    fmt = cfg.formats
    q = ints.extra["quantized"]
    out = folder.file("hardware")
    out.mkdir(parents=True, exist_ok=True)

    # --- 1. Verilog ----------------------------------------------------------------------------
    t0 = time.perf_counter()
    clf_cfg = ClassifierConfig(q.features, q.hidden, q.classes, fmt, lanes=min(LANES, q.hidden))
    conv_cfg = ConvCoreConfig(cfg.options.conv, fmt, steps=cfg.options.encoder.steps,
                              parallelism=CONV_PARALLELISM)
    designs = generate_network(cfg.options, fmt, q, out, conv_lanes=CONV_PARALLELISM,
                               classifier_lanes=clf_cfg.lanes)
    seconds["verilog"] = time.perf_counter() - t0
    lint_result: dict[str, Any] = {}
    t0 = time.perf_counter()
    for name, g in designs.items():
        for path, what in ((g.verilog_path, "Verilog"), (g.json_path, "port description"),
                           (g.rtlil_path, "RTLIL, for Yosys"),
                           (g.verilog_path.with_suffix(".vlt"), "Verilator lint waivers"),
                           (g.verilog_path.with_suffix(".core"), "FuseSoC core (CAPI2)")):
            folder.add(f"hardware/{path.name}", f"{name}: {what}")
        if find_verilator() is not None:
            warnings = lint(g.verilog_path)
            lint_result[name] = [str(w) for w in warnings]
    seconds["lint"] = time.perf_counter() - t0
    lint_text = ", ".join(f"{n} {'clean' if not w else f'{len(w)} warning(s)'}" for n, w in lint_result.items())
    report.say(f"[hardware] Verilog: conv core ({conv_cfg.maps} maps, {CONV_PARALLELISM} per cycle) and "
               f"classifier {clf_cfg.features}->{clf_cfg.hidden}->{clf_cfg.classes} ({clf_cfg.lanes} lanes, "
               f"W2 through the memory port, {clf_cfg.bytes_per_row:.0f} B per active feature) in "
               f"{out}; lint: {lint_text or 'skipped (no Verilator)'}")
    result.update(verilog={n: str(g.verilog_path) for n, g in designs.items()}, lint=lint_result,
                  classifier={"lanes": clf_cfg.lanes, "hidden_acc_bits": clf_cfg.hidden_acc_bits,
                              "output_acc_bits": clf_cfg.output_acc_bits, "logit_bits": clf_cfg.logit_bits,
                              "bytes_per_active_feature": clf_cfg.bytes_per_row})

    # --- 2. end-to-end co-simulation -----------------------------------------------------------
    simulator = _simulator()
    n = min(IMAGES, len(ds.test_images))
    if simulator is None or n == 0:
        report.say("[hardware] co-simulation skipped: " + ("no simulator (Verilator or Icarus)"
                                                            if simulator is None else "no test images"))
        result["cosim"] = None
        _finish(report, result, seconds, t_start)
        return
    t0 = time.perf_counter()
    conv_weights = ints.extra.get("conv1_weights")
    if conv_weights is None:        # the main job: the trained state it saved
        conv_weights = load_state(folder.file("int_state.npz")).conv1_weights
    conv_vs, clf_vs = chain_vectors(fmt, conv_weights, q, ds.test_images[:n], ds.test_labels[:n],
                                    source=ds.name)
    # The conv vectors' golden features are the integer model's own (a consistency check of
    # the wiring here, not of the hardware).
    same = np.array_equal(conv_vs["features"], ints.test_features[:n])
    conv_path = write_conv_vectors(out / "e2e_conv.npz", conv_vs)
    clf_path = write_vector_set(out / "e2e_classifier.npz", clf_vs)
    folder.add("hardware/e2e_conv.npz", "end-to-end vectors: conv-infer (golden encoding, spikes, features)")
    folder.add("hardware/e2e_classifier.npz", "end-to-end vectors: classifier (golden expectations)")
    seconds["vectors"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    chain = build_chain(conv_cfg, clf_cfg, simulator, out / "sim_rtl")
    seconds["build"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dump = out / "e2e_rtl_outputs.npz"
    run = run_chain(chain, conv_path, clf_path, out / "e2e_run", dump=dump, check=False)
    seconds["cosim"] = time.perf_counter() - t0
    if not dump.is_file():
        report.say(f"[hardware] co-simulation on {simulator} failed to run: {run.summary()}")
        result["cosim"] = {"simulator": simulator, "passed": False, "summary": run.summary()}
        _finish(report, result, seconds, t_start)
        return
    folder.add("hardware/e2e_rtl_outputs.npz", "what the RTL produced (classes, words, features, cycles)")
    rtl = np.load(dump)
    rtl_classes = rtl["classes"]
    golden = np.asarray(ints.predictions[:n])
    labels = np.asarray(ds.test_labels[:n])
    mismatches = (run.report or {}).get("mismatches", [])
    agree = int(np.sum(rtl_classes == golden))
    conv_cycles = int(rtl["conv_batch_cycles"].sum())
    clf_cycles = int(rtl["clf_batch_cycles"].sum())
    report.say(f"[hardware] end to end on {simulator}, {n} test images (golden encoder -> conv core RTL "
               f"-> classifier RTL): {'all outputs equal to the golden model' if run.passed else f'{len(mismatches)} mismatching values'} "
               f"({(run.report or {}).get('checked', 0)} checked: spikes, features, hidden bits, logits, "
               f"classes, softmax words); class = golden class for {agree}/{n}; accuracy on these "
               f"images {100 * np.mean(rtl_classes == labels):.1f}% (golden {100 * np.mean(golden == labels):.1f}%)")
    report.say(f"[hardware] cycles: conv core {conv_cycles / n:,.0f}/image, classifier {clf_cycles / n:,.0f}/image "
               f"(batch, incl. pipeline fill); build {seconds['build']:.1f}s, co-simulation {seconds['cosim']:.1f}s")
    if mismatches:
        for m in mismatches[:5]:
            report.say(f"[hardware]   {m['message']}")
        report.say(f"[hardware]   details: {run.test_dir / 'mismatches.json'}; waveform: rerun with waves")
    result["cosim"] = {
        "simulator": simulator, "images": n, "passed": bool(run.passed), "checked": (run.report or {}).get("checked"),
        "mismatches": len(mismatches), "class_equals_golden": agree,
        "rtl_classes": rtl_classes.tolist(), "golden_classes": golden.tolist(), "labels": labels.tolist(),
        "accuracy_rtl": float(np.mean(rtl_classes == labels)), "accuracy_golden": float(np.mean(golden == labels)),
        "golden_features_consistent": bool(same),
        "conv_cycles_per_image": conv_cycles / n, "classifier_cycles_per_image": clf_cycles / n,
    }
    _finish(report, result, seconds, t_start)


def _finish(report, result: dict[str, Any], seconds: dict[str, float], t_start: float) -> None:
    total = time.perf_counter() - t_start
    result["seconds"] = {k: round(v, 2) for k, v in {**seconds, "total": total}.items()}
    report.say(f"[hardware] stage done in {total:.1f}s")
    report.result("hardware", result)
