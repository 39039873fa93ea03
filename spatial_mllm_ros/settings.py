"""From validated parameters to one typed :class:`Settings`: the one path from the parameter
schema (:mod:`spatial_mllm_ros.params`) to the core.

The node, the offline evaluator, the CLIs and (through its
:class:`~spatial_mllm_ros.model.spec.EngineSpec`) the model process all take a
:class:`Settings`, so the same profile gives the same ingestion, buffer, answering and model on
the robot and offline. CLI flags are parameter overrides, validated by the schema
(:meth:`Settings.with_overrides`, :func:`parse_overrides`). Pure: never imports rclpy.

Layering: above ``answering`` (it builds the answering pipeline's configuration), below ``ros``
and ``evaluation``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from spatial_mllm_ros import camera_params
from spatial_mllm_ros import params as P
from spatial_mllm_ros.answering.handle import ModelHandle, load_engine_handle
from spatial_mllm_ros.answering.pipeline import PipelineConfig
from spatial_mllm_ros.answering.remote import RemoteAnswerer, RemoteConfig
from spatial_mllm_ros.camera_params import CameraSettings
from spatial_mllm_ros.core.clock import ClockConfig
from spatial_mllm_ros.core.convert import ConvertLimits
from spatial_mllm_ros.core.ingest import IngestConfig
from spatial_mllm_ros.core.pairing import PairingConfig, PartnerSpec
from spatial_mllm_ros.core.partners import PoseConfig
from spatial_mllm_ros.core.topic_kinds import TOPIC_PARAMS
from spatial_mllm_ros.model.backends.config import VisionSpec
from spatial_mllm_ros.model.decoding import DecodingSpec
from spatial_mllm_ros.model.spec import EngineSpec
from spatial_mllm_ros.params import ParamValue
from spatial_mllm_ros.sampling.budget import BudgetConfig
from spatial_mllm_ros.sampling.online import BufferConfig
from spatial_mllm_ros.sampling.qwen_grid import (
    FACTOR,
    TEMPORAL_PATCH_SIZE,
    VIDEO_MAX_PIXELS,
    VIDEO_MIN_PIXELS,
)

__all__ = [
    "NodeSettings",
    "Settings",
    "load_answerer",
    "parse_overrides",
    "remote_answerer",
]



@dataclass(frozen=True)
class NodeSettings:
    """What only the ROS node uses.

    Attributes:
        autostart: configure and activate at start-up.
        topics: topic kind (``colour``, ``colour_compressed``, ``depth``, ``camera_info``,
            ``pose``, ``odometry``) -> topic name; "" = off.
        qos_reliability, qos_depth: camera subscription QoS.
        tf_enabled, tf_world_frame: camera poses by tf2 lookup.
        diagnostics_period_s: period of ``/diagnostics``, seconds.
        queue_size: question queue bound.
        markers: publish RViz markers of each answer's boxes.
        model_process: run the model in its own process.
        model_stop_grace_s: how long the model process may take to stop after a deadline or
            cancel before it is killed and restarted, seconds.
        model_max_restarts: failed restarts in a row before the model is given up.
        model_nice: niceness the model process adds to the node's (0-19).
        poll_period_s: period of the pairing poll timer, seconds (half of ``pairing.wait_s``).
    """

    topics: Mapping[str, str]
    poll_period_s: float
    autostart: bool = P.bound("autostart")
    qos_reliability: str = P.bound("qos.reliability")
    qos_depth: int = P.bound("qos.depth")
    tf_enabled: bool = P.bound("tf.enabled")
    tf_world_frame: str = P.bound("tf.world_frame")
    diagnostics_period_s: float = P.bound("diagnostics.period_s")
    queue_size: int = P.bound("queue.size")
    markers: bool = P.bound("answer.markers")
    model_process: bool = P.bound("model.process")
    model_stop_grace_s: float = P.bound("model.stop_grace_s")
    model_max_restarts: int = P.bound("model.max_restarts")
    model_nice: int = P.bound("model.nice")


@dataclass(frozen=True)
class Settings:
    """Everything the parameters configure, typed, built once (:meth:`from_values`).

    Attributes:
        values: the full validated parameter set it was built from (read-only view).
        ingest: conversion limits and pairing.
        buffer: the space-aware buffer.
        pipeline: the answering pipeline.
        engine: the model to load.
        node: the ROS node's own settings.
        remote: the model server (``model.endpoint``, ...); ``endpoint`` "" = none.
        cameras: the robot's cameras (``cameras`` and ``camera.<name>.*``, or the one
            ``default`` camera of ``topics.*``: :mod:`spatial_mllm_ros.camera_params`).
    """

    values: Mapping[str, ParamValue]
    ingest: IngestConfig
    buffer: BufferConfig
    pipeline: PipelineConfig
    engine: EngineSpec
    node: NodeSettings
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    cameras: tuple[CameraSettings, ...] = ()

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Settings:
        """Settings of ``values`` (validated; missing parameters take the schema's defaults).

        Raises:
            ParamError: an unknown name, a wrong type or an out-of-range value.
        """
        v = P.validate(values)
        ingest = _ingest(v, _topics(v))
        node = _node(v, ingest)
        return cls(
            values=MappingProxyType(dict(v)),
            ingest=ingest,
            buffer=_buffer(v),
            pipeline=_pipeline(v),
            engine=_engine(v),
            node=node,
            remote=RemoteConfig(**P.bound_values(RemoteConfig, v)),
            cameras=camera_params.build(v, node.topics, node.tf_enabled),
        )

    @classmethod
    def from_profile(
        cls, profile: str | Path, overrides: Mapping[str, Any] | None = None
    ) -> Settings:
        """Settings of a profile (``config/<name>.yaml`` or a YAML path), with overrides."""
        values = dict(P.load_profile(str(profile)))
        values.update(overrides or {})
        return cls.from_values(values)

    @classmethod
    def defaults(cls) -> Settings:
        """Settings of the schema's defaults."""
        return cls.from_values({})

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """New settings with some parameters changed (validated as a whole)."""
        return Settings.from_values({**self.values, **overrides})

    def camera_ingest(self, camera: CameraSettings) -> IngestConfig:
        """The ingestion of one camera (each is paired on its own): :attr:`ingest`'s rules
        with the camera's topics deciding its partners (depth, camera info, poses)."""
        return _ingest(self.values, {kind: camera.topics.get(kind, "") for kind in TOPIC_PARAMS})


def parse_overrides(items: list[str]) -> dict[str, ParamValue]:
    """``NAME:=VALUE`` (or ``NAME=VALUE``) items, as ``--ros-args -p`` takes them, typed by the
    schema: ``-p sampling.frame_budget:=16 -p answer.grounding:=false``.

    Raises:
        ParamError: a malformed item, an unknown name or a value of the wrong type or range.
    """
    out: dict[str, ParamValue] = {}
    for item in items:
        sep = ":=" if ":=" in item else "="
        name, found, text = item.partition(sep)
        if not found or not name.strip():
            raise P.ParamError(f"expected NAME:=VALUE, got {item!r}")
        if camera_params.is_camera_param(name.strip()):  # checked with the whole set
            try:
                out[name.strip()] = camera_params.parse_text(name.strip(), text.strip())
            except ValueError as err:
                raise P.ParamError(str(err)) from err
            continue
        spec = P.spec(name.strip())
        out[spec.name] = spec.check(_typed(spec, text.strip()))
    return out


def _typed(spec: P.ParamSpec, text: str) -> Any:
    if spec.type is bool:
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise P.ParamError(f"{spec.name}: expected true or false, got {text!r}")
        return lowered == "true"
    if spec.type in (int, float):
        try:
            return spec.type(text)
        except ValueError as err:
            raise P.ParamError(f"{spec.name}: expected {spec.type.__name__}, got {text!r}") from err
    return text


def _topics(v: Mapping[str, ParamValue]) -> Mapping[str, str]:
    """Topic kind -> topic name ("" = off) of the ``topics.*`` parameters."""
    return MappingProxyType({kind: str(v[p]) for kind, p in TOPIC_PARAMS.items()})


def _ingest(v: Mapping[str, ParamValue], topics: Mapping[str, str]) -> IngestConfig:
    """The ingestion of the camera with ``topics`` (kind -> topic name, "" = off): the bound
    fields of each part from ``v``; derived here, from several parameters, are the pairing
    partners, whether there is a pose history, and whether camera info is latched
    (``pairing.camera_info``)."""
    latched = bool(topics["camera_info"]) and v["pairing.camera_info"] == "latest"
    partners: list[PartnerSpec] = []
    if topics["depth"]:
        partners.append(PartnerSpec("depth", "consume"))
    if topics["camera_info"] and not latched:
        partners.append(PartnerSpec("camera_info", "reuse"))
    pairing = PairingConfig(**P.bound_values(PairingConfig, v), partners=tuple(partners))
    poses = (PoseConfig(**P.bound_values(PoseConfig, v))
             if topics["pose"] or topics["odometry"] else None)
    bound = P.bound_values(IngestConfig, v)
    if not latched:
        bound["info_wait_ns"] = None  # no camera info to wait for, or paired by stamp
    return IngestConfig(**bound, limits=ConvertLimits(**P.bound_values(ConvertLimits, v)),
                        pairing=pairing, poses=poses,
                        clock=ClockConfig(**P.bound_values(ClockConfig, v)))


def _buffer(v: Mapping[str, ParamValue]) -> BufferConfig:
    return BufferConfig(**P.bound_values(BufferConfig, v))


def _model_pixels(v: Mapping[str, ParamValue]) -> tuple[int, int]:
    """(min, max) pixels per frame of the model's input; ``model.max_pixels`` 0 = Qwen2.5-VL's
    video default (a derived parameter: it sets the engine's, the adaptive budget's and the
    video token cap's pixels)."""
    max_pixels = int(v["model.max_pixels"]) or VIDEO_MAX_PIXELS
    return min(VIDEO_MIN_PIXELS, max_pixels), max_pixels


def _pipeline(v: Mapping[str, ParamValue]) -> PipelineConfig:
    min_pixels, max_pixels = _model_pixels(v)
    budget = BudgetConfig(**P.bound_values(BudgetConfig, v), min_pixels=min_pixels,
                          max_pixels=max_pixels)
    bound = P.bound_values(PipelineConfig, v)
    return PipelineConfig(
        **bound,
        # derived: the adaptive budget is on or off (sampling.adaptive_budget), and the cap
        # of the largest clip from the bound max_frame_budget and the model's input size
        adaptive_budget=budget if v["sampling.adaptive_budget"] else None,
        video_token_cap=_video_token_cap(bound["max_frame_budget"], max_pixels),
    )


def _video_token_cap(max_frames: int, max_pixels: int) -> int:
    """Video tokens of the largest clip: ``max_frames`` frames (merged in pairs) at the largest
    input size, one token per 28x28 px."""
    return -(-max_frames // TEMPORAL_PATCH_SIZE) * (max_pixels // (FACTOR * FACTOR))


def _engine(v: Mapping[str, ParamValue]) -> EngineSpec:
    min_pixels, max_pixels = _model_pixels(v)
    return EngineSpec(
        **P.bound_values(EngineSpec, v),
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        decoding=DecodingSpec(**P.bound_values(DecodingSpec, v)),
        vision=_vision(v),
    )


def _vision(v: Mapping[str, ParamValue]) -> VisionSpec:
    try:
        return VisionSpec.from_values(v)
    except ValueError as err:  # the only check the schema does not make: the sizes' form
        raise P.ParamError(f"{P.bound_params(VisionSpec)['sizes']}: {err}") from err


def _node(v: Mapping[str, ParamValue], ingest: IngestConfig) -> NodeSettings:
    return NodeSettings(
        topics=_topics(v),
        # derived: half the bound pairing wait (pairing.wait_s), at least 10 ms
        poll_period_s=max(ingest.pairing.wait_ns / 2e9, 0.01),
        **P.bound_values(NodeSettings, v),
    )


def load_answerer(settings: Settings, abort: threading.Event | None = None,
                  client: str = "") -> tuple[ModelHandle | None, str]:
    """The node's answerer: the model server when ``model.endpoint`` is set
    (:class:`~spatial_mllm_ros.answering.remote.RemoteAnswerer`, naming itself ``client``;
    it never waits for an absent server), else the engine in a child process when
    ``model.process`` is set (:class:`~spatial_mllm_ros.answering.process.ProcessAnswerer`;
    ``abort`` set while it loads ends the load at once), else in this process
    (:class:`~spatial_mllm_ros.answering.handle.EngineHandle`). Never raises;
    ``(None, reason)`` when the model cannot load."""
    if settings.remote.endpoint:
        return remote_answerer(settings, client)
    if not settings.node.model_process:
        return load_engine_handle(settings.engine)
    from spatial_mllm_ros.answering.errors import ModelProcessError
    from spatial_mllm_ros.answering.process import ProcessAnswerer

    try:
        return ProcessAnswerer(settings.engine, grace_s=settings.node.model_stop_grace_s,
                               max_restarts=settings.node.model_max_restarts,
                               nice=settings.node.model_nice, abort=abort), ""
    except ModelProcessError as err:
        return None, str(err)


def remote_answerer(settings: Settings, client: str = "") -> tuple[RemoteAnswerer | None, str]:
    """The :class:`~spatial_mllm_ros.answering.remote.RemoteAnswerer` of ``model.endpoint``
    (the node, ``spatial-mllm-infer --endpoint``, ``spatial-mllm-eval --endpoint``); never
    raises: ``(None, reason)`` for an endpoint that is not a URL or an unreadable token file."""
    from spatial_mllm_ros.answering.errors import RemoteModelError

    try:
        return RemoteAnswerer(dataclasses.replace(settings.remote, client=client)), ""
    except RemoteModelError as err:
        return None, str(err)
