"""Offline console commands built on :class:`~spatial_mllm_ros.settings.Settings`
(``spatial-mllm-infer``); the ROS clients live in :mod:`spatial_mllm_ros.ros`, the evaluation
commands in :mod:`spatial_mllm_ros.evaluation.cli`, the checkpoint tool in
:mod:`spatial_mllm_ros.model.cli`."""
