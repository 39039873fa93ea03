"""The ROS 2 edge: the lifecycle node, QoS, outgoing message building, diagnostics, tools.

Everything below imports rclpy; the pure library (``spatial_mllm_ros.core`` & co.) never does.
Incoming messages are converted by ``spatial_mllm_ros.core.convert`` (duck-typed, shared with
the offline bag evaluator); outgoing ones by ``spatial_mllm_ros.core.encode`` with rclpy's
message classes (``spatial_mllm_ros.ros.conversions.ENCODER``).
"""
