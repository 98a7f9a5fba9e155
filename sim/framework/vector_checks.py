"""What each kind of vector file must satisfy beyond shapes and dtypes: the meaning of its arrays
against its header (registered as the kinds' ``check``, run by :func:`~spykehw.sim.framework.vectors.read_vectors`
on every file read).

Why: a file whose ``options.cases`` is one entry short was co-simulated for all but one image and
passed; a header whose ``weight_bits`` or ``threshold`` was changed, or whose offsets or values
were out of range, passed the reader and failed later as a traceback or as "RTL mismatches".
Every check here names the file and the key or array, what the header implies and what was found.
"""

from __future__ import annotations

from ...golden.fixed import signed_range
from ...golden.options import ConvOptions
from .vectors import VectorSet, check_offsets, check_range, require

__all__ = ["check_conv_header", "check_conv_weights", "check_conv_infer", "check_conv_learn",
           "check_classifier"]


def check_conv_header(vs: VectorSet, N: int, outputs: str, offsets: str) -> ConvOptions:
    """The checks a conv-infer and a conv-learn file share (see :mod:`spykehw.sim.framework.vectors`):
    ``N`` images listed in ``options.cases``, events and ``outputs`` (spikes or winners, CSR by
    ``offsets``) within the layer and the steps, threshold and potential width from the
    formats. Returns the layer's options."""
    o, fmt = vs.options, vs.formats
    opts = ConvOptions(**o["conv"])
    steps, msi = o["steps"], o["max_spikes_per_input"]
    require(isinstance(steps, int) and steps >= 1, vs, f"options.steps must be >= 1, found {steps!r}")
    require(isinstance(msi, int) and msi >= 1, vs,
            f"options.max_spikes_per_input must be >= 1, found {msi!r}")
    require(isinstance(o["cases"], list) and len(o["cases"]) == N, vs,
            f"options.cases lists {len(o['cases']) if isinstance(o['cases'], list) else '?'} images, "
            f"the arrays hold {N}")
    require(o["threshold"] == fmt.threshold_int(opts.threshold), vs,
            f"options.threshold is {o['threshold']!r}, the formats give "
            f"{fmt.threshold_int(opts.threshold)} (threshold {opts.threshold} at "
            f"{fmt.conv.weight_bits} weight bits)")
    pbits = fmt.potential_bits(opts.in_channels, opts.kernel, msi)
    require(o["potential_bits"] == pbits, vs,
            f"options.potential_bits is {o['potential_bits']!r}, the formats give {pbits}")
    out = opts.in_size - opts.kernel + 1
    for name, offs, lims in (("events", "event_offsets", (opts.in_channels, opts.in_size)),
                             (outputs, offsets, (opts.maps, out))):
        require(vs[name].shape[1] == 4, vs, f"{name} must have 4 columns (t, ., y, x)")
        check_offsets(vs, offs, N, vs[name].shape[0])
        check_range(vs, name, 0, steps - 1, column=0, what="step")
        check_range(vs, name, 0, lims[0] - 1, column=1, what="channel/map")
        check_range(vs, name, 0, lims[1] - 1, column=2, what="row")
        check_range(vs, name, 0, lims[1] - 1, column=3, what="column")
    return opts


def check_conv_weights(vs: VectorSet, name: str, opts: ConvOptions, lead: int) -> None:
    """Array ``name`` is ``(..., M, C, K, K)`` of the layer (``lead`` leading dims) within the
    formats' weight range."""
    fmt = vs.formats
    shape = (opts.maps, opts.in_channels, opts.kernel, opts.kernel)
    require(vs[name].shape[lead:] == shape, vs, f"{name} must end in (M, C, K, K) = {shape} "
            f"(options.conv), found {vs[name].shape[lead:]}")
    check_range(vs, name, 0, fmt.weight_max(), what=f"{fmt.conv.weight_bits}-bit weights")


def check_conv_infer(vs: VectorSet) -> None:
    """The content against the header (see :mod:`spykehw.sim.framework.vectors`): a conv-infer file is
    only read if every image is listed, every value fits the formats and the layer it drives,
    and the threshold and potential width are the ones the formats give."""
    o = vs.options
    N = vs["weight_set"].shape[0]
    opts = check_conv_header(vs, N, "spikes", "spike_offsets")
    W = vs["weights"].shape[0]
    require(isinstance(o["weight_sets"], list) and len(o["weight_sets"]) == W, vs,
            f"options.weight_sets lists {len(o['weight_sets']) if isinstance(o['weight_sets'], list) else '?'}"
            f" weight sets, the weights array holds {W}")
    check_conv_weights(vs, "weights", opts, 1)
    check_range(vs, "weight_set", 0, W - 1)
    require(vs["features"].shape[1] == opts.features, vs,
            f"features must have {opts.features} columns (options.conv), found {vs['features'].shape[1]}")
    check_range(vs, "features", 0, 1)


def check_conv_learn(vs: VectorSet) -> None:
    """The content against the header (see :mod:`spykehw.sim.framework.vectors`): every image listed,
    events and winners within the layer, initial and expected weights within the formats."""
    N = vs["weights"].shape[0]
    opts = check_conv_header(vs, N, "winners", "winner_offsets")
    check_conv_weights(vs, "weights0", opts, 0)
    check_conv_weights(vs, "weights", opts, 1)
    check_conv_weights(vs, "snapshots", opts, 1)
    e = vs.options["epoch_images"]
    require(isinstance(e, int) and e >= 1 and N % e == 0, vs,
            f"options.epoch_images is {e!r}: must be >= 1 and divide the {N} images")


def check_classifier(vs: VectorSet) -> None:
    """The content against the header (see :mod:`spykehw.sim.framework.vectors`): the shape in
    ``options``, every image listed, weights and biases within their formats, feature indices
    within the features, hidden bits, classes, softmax words and labels within range."""
    o, c = vs.options, vs.formats.classifier
    F, H = vs["w2"].shape
    C = vs["w3"].shape[1]
    for key, n in (("features", F), ("hidden", H), ("classes", C)):
        require(o[key] == n, vs, f"options.{key} is {o[key]!r}, the arrays have {n}")
    N = vs["counts"].shape[0]
    # Synthetic sets name their cases; real ones list their test rows instead.
    listed = o["cases"] or o.get("test_rows", [])
    key = "cases" if o["cases"] else "test_rows"
    require(isinstance(listed, list) and len(listed) == N, vs,
            f"options.{key} lists {len(listed) if isinstance(listed, list) else '?'} images, "
            f"the arrays hold {N}")
    for name, bits in (("w2", c.hidden_weight_bits), ("b2", c.hidden_bias_bits),
                       ("w3", c.output_weight_bits), ("b3", c.output_bias_bits)):
        lo, hi = signed_range(bits)
        check_range(vs, name, lo, hi, what=f"signed {bits} bits")
    check_range(vs, "indices", 0, F - 1, what="feature index")
    check_range(vs, "counts", 0, F, what="active features")
    require(int(vs["counts"].sum()) == vs["indices"].shape[0], vs,
            f"counts add up to {int(vs['counts'].sum())}, indices holds {vs['indices'].shape[0]}")
    check_range(vs, "hidden", 0, 1)
    check_range(vs, "classes", 0, C - 1)
    check_range(vs, "labels", -1, C - 1)
    check_range(vs, "words", 0, (1 << vs.formats.softmax.softmax_bits) - 1, what="softmax words")
