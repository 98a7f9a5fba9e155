"""Block configs from one :class:`~spykehw.golden.design_point.DesignPoint`."""

from __future__ import annotations

from ..golden.design_point import DesignPoint
from .classifier import ClassifierConfig
from .conv_config import ConvCoreConfig

__all__ = ["conv_core_config", "classifier_config"]


def conv_core_config(point: DesignPoint, *, learning: bool = False) -> ConvCoreConfig:
    """The conv core of ``point`` (Conv1 inputs spike at most once)."""
    return ConvCoreConfig(options=point.conv, formats=point.formats, steps=point.steps,
                          parallelism=point.conv_lanes, learning=learning)


def classifier_config(point: DesignPoint) -> ClassifierConfig:
    """The classifier of ``point``; ``W2`` on chip unless the point places it externally."""
    return ClassifierConfig(features=point.features, hidden=point.hidden, classes=point.classes,
                            formats=point.formats, lanes=point.classifier_lanes,
                            w2_on_chip=point.weights == "on-chip")
