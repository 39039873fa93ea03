"""A config field bound to its parameter (params.bound): the parameter's name is spelled once,
in the field's metadata, and the config built from parameter values takes each bound field's
value from its parameter."""

from __future__ import annotations

import dataclasses
import re
import typing
from collections import Counter
from collections.abc import Iterator

import pytest

from spatial_mllm_ros import params as P
from spatial_mllm_ros.answering.pipeline import PipelineConfig
from spatial_mllm_ros.answering.remote import RemoteConfig
from spatial_mllm_ros.core.clock import ClockConfig
from spatial_mllm_ros.core.convert import ConvertLimits
from spatial_mllm_ros.core.ingest import IngestConfig
from spatial_mllm_ros.core.pairing import PairingConfig
from spatial_mllm_ros.core.partners import PoseConfig
from spatial_mllm_ros.model.backends.config import VisionSpec
from spatial_mllm_ros.model.decoding import DecodingSpec
from spatial_mllm_ros.model.fit import FitLimits
from spatial_mllm_ros.model.spec import EngineSpec
from spatial_mllm_ros.sampling.budget import BudgetConfig
from spatial_mllm_ros.sampling.online import BufferConfig
from spatial_mllm_ros.settings import NodeSettings, Settings

#: Some config dataclasses whose parameter fields are bound (every one: ROOTS below).
BOUND = (PipelineConfig, BufferConfig, NodeSettings, RemoteConfig)


def test_every_bound_field_names_a_schema_parameter_once_with_its_default() -> None:
    bound = P.bound_params(PipelineConfig)
    assert len(bound) == 12
    assert len(set(bound.values())) == len(bound)  # no parameter reaches two fields
    defaults = PipelineConfig()
    for name, param in bound.items():
        assert getattr(defaults, name) == P.spec(param).default, name


def test_the_pipeline_config_takes_each_bound_parameters_value() -> None:
    overrides = {"sampling.frame_budget": 5, "answer.grounding": False,
                 "queue.timeout_s": 12.5, "answer.prompt_template": "lmms-eval"}
    config = Settings.from_profile("cpu_tiny", overrides).pipeline
    for name, param in P.bound_params(PipelineConfig).items():
        got = getattr(config, name)
        assert type(got) is P.spec(param).type, name
        if param in overrides:
            assert got == overrides[param], name
    unbound = {f.name for f in dataclasses.fields(PipelineConfig)} - set(
        P.bound_params(PipelineConfig))
    assert unbound == {"adaptive_budget", "video_token_cap"}  # derived from several


def test_the_buffer_config_is_bound_too() -> None:
    bound = P.bound_params(BufferConfig)
    assert set(bound.values()) == {p.name for p in P.SCHEMA if p.name.startswith("buffer.")}
    config = Settings.from_profile("cpu_tiny", {"buffer.max_frames": 17,
                                                "buffer.voxel_size_m": 0.25}).buffer
    assert (config.max_frames, config.voxel_size_m) == (17, 0.25)
    assert BufferConfig().max_bytes == P.spec("buffer.max_bytes").default


def test_no_parameter_reaches_two_bound_fields() -> None:
    params = [p for cls in BOUND
              for p in P.bound_params(cls).values()]
    assert len(params) == len(set(params))


def test_the_node_settings_take_their_bound_parameters() -> None:
    node = Settings.from_profile("cpu_tiny", {"model.stop_grace_s": 7.5, "queue.size": 9}).node
    assert (node.model_stop_grace_s, node.queue_size) == (7.5, 9)
    assert len(P.bound_params(NodeSettings)) == 12


def test_the_remote_config_takes_its_bound_parameters() -> None:
    remote = Settings.from_profile("cpu_tiny", {"model.frame_encoding": "jpeg",
                                                "model.jpeg_quality": 70}).remote
    assert (remote.encoding, remote.jpeg_quality, remote.endpoint) == ("jpeg", 70, "")
    assert P.bound_params(RemoteConfig)["encoding"] == "model.frame_encoding"


# --- the whole schema: every parameter reaches exactly one config field, or says it does not

#: Where the config dataclasses hang: Settings (every config it builds, found through its
#: fields' types) and the fit check's limits (model.fit, read from Settings.values).
ROOTS: tuple[type, ...] = (Settings, FitLimits)


def _dataclasses_in(hint: object) -> Iterator[type]:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        yield hint
    for arg in typing.get_args(hint):
        yield from _dataclasses_in(arg)


def _config_classes() -> set[type]:
    """Every dataclass reachable from :data:`ROOTS` through field types."""
    seen: set[type] = set()
    todo = list(ROOTS)
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.add(cls)
            hints = typing.get_type_hints(cls)
            todo.extend(t for f in dataclasses.fields(cls) for t in _dataclasses_in(hints[f.name]))
    return seen


def _reached() -> Counter[str]:
    """Parameter -> how many bound fields of all config classes name it."""
    return Counter(p for cls in _config_classes() for p in P.bound_params(cls).values())


def test_the_walk_finds_every_config_of_settings() -> None:
    assert _config_classes() >= {
        IngestConfig, PairingConfig, ClockConfig, PoseConfig, ConvertLimits, BufferConfig,
        PipelineConfig, BudgetConfig, EngineSpec, DecodingSpec, VisionSpec, NodeSettings,
        RemoteConfig, FitLimits}


@pytest.mark.parametrize("param", [p.name for p in P.SCHEMA])
def test_every_parameter_reaches_one_field_or_is_marked_derived_or_node_only(param: str) -> None:
    want = 1 if P.spec(param).scope is P.Scope.FIELD else 0
    assert _reached()[param] == want, P.spec(param).scope


def test_every_bound_field_names_a_schema_parameter() -> None:
    assert set(_reached()) <= {p.name for p in P.SCHEMA}


def test_node_only_parameters_are_the_ones_only_ros_reads() -> None:
    node_only = {p.name for p in P.SCHEMA if p.scope is P.Scope.NODE}
    assert node_only == {"executor.threads", "diagnostics.silent_periods",
                         "startup.name_check_s", "security.allow_cancel_all",
                         "queue.request_depth"}


def _other(spec: P.ParamSpec, current: P.ParamValue) -> P.ParamValue:
    """A valid value of ``spec`` other than ``current`` (for numbers: its default)."""
    if spec.type is bool:
        return not current
    if spec.choices:
        return next(c for c in spec.choices if c != current)
    if spec.type is str:
        return {"model.vision_sizes": "476x644",
                "model.endpoint": "http://127.0.0.1:9"}.get(spec.name, "/p5/other")
    if spec.type is int:  # one up (the cross rules leave room for it)
        return spec.check(int(spec.default) + 1)
    top = spec.max if spec.max is not None else float(spec.default) + 2
    return spec.check(float(spec.default) + (top - float(spec.default)) / 2)


def _bound_field_values(settings: Settings) -> Iterator[tuple[str, object, object]]:
    """(parameter, field value, the value the parameter gives it) of every bound field of the
    configs ``settings`` holds (and of the fit check's limits)."""
    todo: list[object] = [settings, FitLimits(**P.bound_values(FitLimits, settings.values))]
    while todo:
        config = todo.pop()
        for f in dataclasses.fields(config):  # type: ignore[arg-type]
            value = getattr(config, f.name)
            if P.PARAM_KEY in f.metadata:
                given = P.spec(f.metadata[P.PARAM_KEY]).type(settings.values[f.metadata[
                    P.PARAM_KEY]])
                convert = f.metadata.get("convert")
                yield f.metadata[P.PARAM_KEY], value, convert(given) if convert else given
            todo.extend(v for v in (value if isinstance(value, tuple) else (value,))
                        if dataclasses.is_dataclass(v) and not isinstance(v, type))


def _configs(settings: Settings) -> Settings:
    return dataclasses.replace(settings, values={})


#: Every optional part present: a pose history, latched camera info, the adaptive budget.
BASE = {"sampling.adaptive_budget": True}


@pytest.mark.parametrize("param", [p.name for p in P.SCHEMA])
def test_a_parameter_changes_what_its_scope_says(param: str) -> None:
    """FIELD: its one bound field takes the new value; NODE: no config changes; DERIVED:
    some config changes."""
    spec = P.spec(param)
    base = Settings.from_values(BASE)
    changed = base.with_overrides({param: _other(spec, base.values[param])})
    if spec.scope is P.Scope.FIELD:
        [(value, expected)] = [(v, e) for p, v, e in _bound_field_values(changed) if p == param]
        assert value == expected
        [(before, _)] = [(v, e) for p, v, e in _bound_field_values(base) if p == param]
        assert before != value
    elif spec.scope is P.Scope.NODE:
        assert _configs(changed) == _configs(base)
    else:
        assert _configs(changed) != _configs(base)


def test_seconds_parameters_reach_their_fields_in_nanoseconds() -> None:
    ingest = Settings.from_values({"pairing.slop_s": 0.05, "clock.jump_back_s": 2.5}).ingest
    assert (ingest.pairing.slop_ns, ingest.clock.jump_back_ns) == (50_000_000, 2_500_000_000)
    assert type(ingest.pairing.slop_ns) is int


# --- descriptions say what a parameter does; measured figures live in the README

#: Words and forms of a measured or approximate figure (the README and the benchmarks hold
#: those).
MEASURED = re.compile(r"measured|faster|slower|this machine|keeps up at|~\s?\d|about a second"
                      r"|\d\s?(ms|MB|GB|GiB|MiB)\b", re.IGNORECASE)


@pytest.mark.parametrize("param", [p.name for p in P.SCHEMA])
def test_a_description_holds_no_measured_figure(param: str) -> None:
    assert not MEASURED.search(P.spec(param).description)
