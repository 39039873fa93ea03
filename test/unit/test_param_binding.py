"""A config field bound to its parameter (params.bound): the parameter's name is spelled once,
in the field's metadata, and the config built from parameter values takes each bound field's
value from its parameter."""

from __future__ import annotations

import dataclasses

from spatial_mllm_ros import params as P
from spatial_mllm_ros.answering.pipeline import PipelineConfig
from spatial_mllm_ros.answering.remote import RemoteConfig
from spatial_mllm_ros.sampling.online import BufferConfig
from spatial_mllm_ros.settings import NodeSettings, Settings

#: The config dataclasses whose parameter fields are bound (the others -- ingest, clock,
#: pairing, the engine spec -- are still built by hand in settings.py).
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
    assert len(P.bound_params(NodeSettings)) == 11


def test_the_remote_config_takes_its_bound_parameters() -> None:
    remote = Settings.from_profile("cpu_tiny", {"model.frame_encoding": "jpeg",
                                                "model.jpeg_quality": 70}).remote
    assert (remote.encoding, remote.jpeg_quality, remote.endpoint) == ("jpeg", 70, "")
    assert P.bound_params(RemoteConfig)["encoding"] == "model.frame_encoding"
